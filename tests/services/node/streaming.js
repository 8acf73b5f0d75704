// Response streaming handlers (awslambda.streamifyResponse), run as buffered invocations.
'use strict';

exports.text = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType('text/plain');
  responseStream.write('hello ');
  await new Promise((resolve) => setTimeout(resolve, 5));
  responseStream.end(event.name ?? 'stream');
});

exports.http = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { 'x-kind': 'streamed' },
  });
  stream.write('body');
  stream.end();
});

exports.unfinished = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('never ended');
});

exports.throws = awslambda.streamifyResponse(async () => {
  throw new TypeError('stream broke');
});

exports.notAsync = awslambda.streamifyResponse((event, responseStream) => {
  responseStream.end('sync');
});
