// CommonJS handlers for tests/functional/test_node_worker.py: one export per behaviour.
'use strict';

console.log('loading handlers.js');

let calls = 0;

exports.hello = async (event) => ({ hello: event.name ?? 'world' });

exports.echo = async (event) => event;

exports.counter = async () => {
  calls += 1;
  return { calls, pid: process.pid };
};

exports.inspect = async (event, context) => ({
  context: {
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    awsRequestId: context.awsRequestId,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    identity: context.identity ?? null,
    clientContext: context.clientContext ?? null,
    remaining: context.getRemainingTimeInMillis(),
    waits: context.callbackWaitsForEmptyEventLoop,
  },
  env: process.env,
  cwd: process.cwd(),
  argv: process.argv.slice(1),
  tmpdir: require('os').tmpdir(),
});

// Callback handlers.
exports.callback = (event, context, callback) => {
  callback(null, { via: 'callback' });
};

exports.callbackError = (event, context, callback) => {
  callback(new RangeError('out of range'));
};

exports.callbackWaits = (event, context, callback) => {
  // The result goes out only once this timer has run: the loop must be empty.
  setTimeout(() => console.log('timer ran before the result'), 50);
  callback(null, 'after the timer');
};

exports.callbackNoWait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  // Never ends: with the default, the result would wait forever.
  globalThis.forever = setInterval(() => {}, 1000);
  callback(null, 'at once');
};

exports.stopForever = async () => {
  clearInterval(globalThis.forever);
  return 'stopped';
};

exports.callbackTwice = (event, context, callback) => {
  callback(null, 'first');
  callback(null, 'second');
};

exports.syncReturn = () => 42; // a sync handler's return value is ignored: null

exports.returnsPromise = () => Promise.resolve('from a promise');

exports.succeed = (event, context) => context.succeed({ via: 'succeed' });
exports.fail = (event, context) => context.fail(new Error('failed via context'));
exports.failEmpty = (event, context) => context.fail();
exports.done = (event, context) => context.done(null, 'done!');
exports.doneError = (event, context) => context.done('a string error');

// Errors.
class OddError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OddError';
  }
}

exports.throws = async () => {
  throw new TypeError('bad thing');
};

exports.throwsSync = () => {
  throw new OddError('something odd');
};

exports.throwsString = async () => {
  throw 'just a string';
};

exports.rejectsObject = () => Promise.reject({ code: 42 });

exports.rejectsUndefined = () => Promise.reject();

exports.neverSettles = async () => new Promise(() => {});

exports.circular = async () => {
  const a = {};
  a.self = a;
  return a;
};

exports.bigint = async () => 10n;

exports.uncaught = async () => {
  setTimeout(() => {
    throw new Error('thrown from a timer');
  }, 10);
  await new Promise((resolve) => setTimeout(resolve, 60000));
};

exports.unhandled = async () => {
  Promise.reject(new Error('nobody catches me'));
  await new Promise((resolve) => setTimeout(resolve, 60000));
};

exports.uncaughtAfter = async () => {
  setTimeout(() => {
    throw new Error('after the answer');
  }, 20);
  return 'answered';
};

exports.exits = () => process.exit(3);

exports.badEvent = async (event) => event;

// Output.
exports.output = async () => {
  console.log('log %s', 'formatted', { a: 1 });
  console.info('info line');
  console.warn('warn line');
  console.error('error line', new Error('shown'));
  console.debug('debug line');
  console.trace('trace line');
  console.log('two\nlines');
  process.stdout.write('raw stdout\n');
  process.stderr.write('raw stderr\n');
  console.log();
  return 'logged';
};

exports.chatty = async (event) => {
  const line = 'x'.repeat(1023);
  for (let i = 0; i < event.lines; i += 1) {
    console.log(line);
  }
  return event.lines;
};

// Nested and non-function exports.
exports.nested = { deeper: { fn: async () => 'deep' } };
exports.value = 42;

// NODE_PATH: a package found only through a layer's folder.
exports.fromLayer = async () => ({
  where: require('layer-lib').where,
  nodePath: process.env.NODE_PATH,
});

// What V8 was started with: its heap is sized for the function's memory.
exports.heap = async () => ({
  heapLimitMb: Math.round(require('v8').getHeapStatistics().heap_size_limit / 1048576),
  gc: typeof global.gc,
  pid: process.pid,
});

// Which execution environment this is (in a jail every worker is pid 2 of its own namespace).
const environment = require('crypto').randomUUID();

// Throws from a timer while the invocation runs, when asked to; else answers its environment.
exports.maybeUncaught = async (event) => {
  if (event.throwInTimer) {
    setTimeout(() => {
      throw new Error('thrown from a timer');
    }, 5);
    await new Promise((resolve) => setTimeout(resolve, 60000));
  }
  return { pid: process.pid, environment };
};

// How node was started: NODE_OPTIONS of the function apply, as on Lambda.
exports.options = async () => ({
  execArgv: process.execArgv,
  sourceMaps: process.sourceMapsEnabled,
  nodeOptions: process.env.NODE_OPTIONS,
});
