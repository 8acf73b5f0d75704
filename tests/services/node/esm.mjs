// An ES module handler (.mjs).
export const handler = async (event, context) => ({
  module: 'esm',
  url: import.meta.url.startsWith('file://'),
  requestId: context.awsRequestId,
});
