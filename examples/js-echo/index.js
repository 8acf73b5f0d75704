// Seed 004's echo service: POST a body, get the same bytes back, with its Content-Type.
// One handler file for two runtimes: `quickjs` (QuickJS-NG in faasbox's WebAssembly
// sandbox) and `nodejs20.x` (Node.js in a worker process); see serverless.yml.
exports.handler = async (event, context) => {
  const headers = event.headers || {};
  const name = Object.keys(headers).find((key) => key.toLowerCase() === 'content-type');
  const body = event.body ?? '';
  console.log(
    `echo: ${body.length} characters (${event.isBase64Encoded ? 'base64' : 'text'}),`,
    `${context.getRemainingTimeInMillis() > 0 ? 'in time' : 'late'}`,
  );
  return {
    statusCode: 200,
    headers: { 'Content-Type': name ? headers[name] : 'application/octet-stream' },
    body,
    isBase64Encoded: Boolean(event.isBase64Encoded),
  };
};
