'use strict';
// CommonJS handlers, as they run on AWS Lambda.

exports.hello = async (event, context) => {
  console.log('hello from', event.rawPath);
  const name = event.queryStringParameters?.name ?? 'world';
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: `${process.env.GREETING}, ${name}`,
      requestId: context.awsRequestId,
      runtime: process.env.AWS_EXECUTION_ENV,
    }),
  };
};

// The callback style of older Node.js functions, behind a REST API (payload 1.0).
exports.legacy = (event, context, callback) => {
  console.info('legacy', event.httpMethod, event.pathParameters.id);
  const received = JSON.parse(event.body || '{}');
  callback(null, {
    statusCode: 201,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: event.pathParameters.id,
      received,
      functionName: context.functionName,
    }),
  });
};

class WidgetError extends Error {
  constructor(message) {
    super(message);
    this.name = 'WidgetError';
  }
}

exports.boom = async () => {
  console.error('about to fail');
  throw new WidgetError('the widget broke');
};

exports.slow = async () => {
  console.log('starting a long job');
  await new Promise((resolve) => setTimeout(resolve, 30000));
  return 'never';
};

exports.hog = async () => {
  const chunks = [];
  for (;;) {
    chunks.push(Buffer.alloc(16 << 20, 1)); // touched pages: resident memory grows
    console.log(`holding ${chunks.length * 16} MB`);
    await new Promise((resolve) => setImmediate(resolve));
  }
};
