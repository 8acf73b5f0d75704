'use strict';
/*
 * The Node.js worker: one execution environment, running one invocation at a time.
 *
 * Started as `node [flags] bootstrap.js CONTROL_FD` (faasbox/execution/process/node/
 * __init__.py says which flags), with fd 1 and 2 on the server's log pipe. It
 * speaks the frames of faasbox/execution/process/protocol.py (a 9-byte prefix: kind, header
 * length, body length, big-endian; a JSON header; a raw body). It waits for BOOT (a spare is
 * started ahead of need: Node cannot fork, so a cold start is INIT only), becomes the function
 * (environment, cwd, NODE_PATH, console), loads the handler and answers READY or INIT_ERROR,
 * then serves INVOKE frames with RESULT frames until the server closes the socket.
 *
 * Semantics follow Lambda's Node.js runtime: handler resolution (CommonJS and ES modules),
 * async and callback handlers, context.succeed/fail/done, callbackWaitsForEmptyEventLoop
 * (the result of a callback waits until the event loop is empty, seen through 'beforeExit':
 * the control socket is unref'd while an invocation runs so it does not count), the
 * `TIMESTAMP\tREQUEST_ID\tLEVEL\tmessage` console format, and the error objects
 * ({errorType, errorMessage, trace}) and Runtime.* faults.
 *
 * Plain Node, no dependencies, nothing function-specific before BOOT; no assumption on the
 * cwd or on any path but BOOT's, so it runs the same under any launcher or jail.
 */

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');
const { Writable } = require('stream');

// Frame kinds (protocol.py).
const BOOT = 1;
const INVOKE = 2;
const READY = 10;
const INIT_ERROR = 11;
const RESULT = 12;
const PREFIX_SIZE = 9;
const MAX_HEADER = 1 << 20;
const EMPTY = Buffer.alloc(0);

// Exit codes of Lambda's runtime client.
const EXIT_UNCAUGHT = 129;
const EXIT_UNHANDLED_REJECTION = 128;
const EXIT_UNSETTLED_INIT = 13; // what Node itself uses for a top-level await never settled

// ---------------------------------------------------------------------------------------
// Output: synchronous writes on fd 1 and 2, so every line written before a RESULT is in the
// log pipe when the server reads that RESULT, and nothing is lost to a kill.

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd, data) {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let offset = 0;
  while (offset < buf.length) {
    try {
      offset += fs.writeSync(fd, buf, offset, buf.length - offset);
    } catch (err) {
      if (err.code === 'EAGAIN') {
        // The pipe is full (someone made it non-blocking): wait for the server to read.
        Atomics.wait(sleeper, 0, 0, 1);
      } else if (err.code === 'EPIPE') {
        return; // the server is gone; so are we, shortly
      } else {
        throw err;
      }
    }
  }
}

function syncStream(fd) {
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      writeAll(fd, chunk);
      callback();
    },
  });
  stream.fd = fd;
  stream.isTTY = false;
  return stream;
}

function replaceStdio() {
  for (const [name, fd] of [
    ['stdout', 1],
    ['stderr', 2],
  ]) {
    const stream = syncStream(fd);
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: true,
      get: () => stream,
    });
  }
}

// ---------------------------------------------------------------------------------------
// Logging, as Lambda's runtime patches console.

const LEVELS = {
  TRACE: 1,
  DEBUG: 2,
  INFO: 3,
  WARN: 4,
  ERROR: 5,
  FATAL: 6,
};

let currentRequestId; // undefined until the first invocation, as Lambda logs it
let logFormat = 'TEXT';
let minimumLevel = LEVELS.TRACE;

function errorFields(value) {
  return {
    errorType: value?.constructor?.name ?? 'UnknownError',
    errorMessage: value.message,
    stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
  };
}

function jsonLine(level, params) {
  const record = {
    timestamp: new Date().toISOString(),
    level,
    requestId: currentRequestId,
  };
  if (params.length === 1) {
    record.message = params[0];
    try {
      return JSON.stringify(record, (_key, value) =>
        value instanceof Error ? Object.assign(errorFields(value), value) : value,
      );
    } catch {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...params);
  const error = params.find((p) => p instanceof Error);
  if (error !== undefined) {
    Object.assign(record, errorFields(error));
  }
  return JSON.stringify(record);
}

function emit(level, params) {
  if (LEVELS[level] < minimumLevel) {
    return;
  }
  const line =
    logFormat === 'JSON'
      ? jsonLine(level, params)
      : `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...params)}`;
  writeAll(1, line + '\n');
}

function patchConsole(env) {
  logFormat = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON' ? 'JSON' : 'TEXT';
  minimumLevel = LEVELS[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? LEVELS.TRACE;
  // Like Lambda's: `console.x(message, ...params)`, with message `undefined` when absent.
  const at =
    (level) =>
    (message, ...params) =>
      emit(level, [message, ...params]);
  console.trace = at('TRACE');
  console.debug = at('DEBUG');
  console.info = at('INFO');
  console.log = console.info;
  console.warn = at('WARN');
  console.error = at('ERROR');
  console.fatal = at('FATAL');
}

/** The `Invoke Error` / `Uncaught Exception` record Lambda's runtime writes for a failure. */
function logFailure(label, err) {
  const error = err instanceof Error ? err : new Error(err);
  if (logFormat === 'JSON') {
    emit('ERROR', [error]);
    return;
  }
  emit('ERROR', [label, formattedError(error)]);
}

function formattedError(error) {
  const enumerable = (_key, value) => {
    if (!(value instanceof Error)) {
      return value;
    }
    const out = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') {
      out.stack = value.stack.split('\n');
    }
    return out;
  };
  try {
    return '\t' + JSON.stringify(error, enumerable);
  } catch {
    return '\t' + JSON.stringify(errorResponse(error));
  }
}

// ---------------------------------------------------------------------------------------
// Errors, as the runtime reports them.

class RuntimeError extends Error {}

function runtimeError(name, defaults) {
  const cls = class extends RuntimeError {};
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  if (defaults) {
    Object.assign(cls.prototype, defaults);
  }
  return cls;
}

const ImportModuleError = runtimeError('ImportModuleError');
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
const MalformedStreamingHandler = runtimeError('MalformedStreamingHandler');

class NodeJsExit extends RuntimeError {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most ' +
        'commonly caused by a Promise that was never settled. For more information, see ' +
        'https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
NodeJsExit.prototype.name = 'Runtime.NodeJsExit';

class UnhandledPromiseRejection extends RuntimeError {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

function looksLikeError(value) {
  return (
    value &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string' &&
    value.name &&
    value.message &&
    value.stack
  );
}

/** The error object of a failed invocation: an Error's name, message and stack lines; for
 * anything else thrown, its type and string. */
function errorResponse(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      const clean = (s) => s?.replaceAll('\x7F', '%7F');
      return {
        errorType: clean(error.name),
        errorMessage: clean(error.message),
        trace: clean(String(error.stack)).split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving ' +
        'one or more of its message, name, and stack',
    };
  }
}

// ---------------------------------------------------------------------------------------
// The control channel.

class Channel {
  constructor(fd, onFrame, onClosed) {
    this.socket = new net.Socket({ fd, readable: true, writable: true });
    this.chunks = [];
    this.buffered = 0;
    this.needed = PREFIX_SIZE; // bytes for the next step: the prefix, then the whole frame
    this.prefix = null;
    this.writing = 0; // frames handed to the socket and not yet written out
    this.flushed = [];
    this.onFrame = onFrame;
    this.socket.on('data', (data) => this.receive(data));
    this.socket.on('end', onClosed);
    this.socket.on('close', onClosed);
    this.socket.on('error', onClosed);
  }

  receive(data) {
    this.chunks.push(data);
    this.buffered += data.length;
    while (this.buffered >= this.needed) {
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      if (this.prefix === null) {
        const headLength = all.readUInt32BE(1);
        if (headLength > MAX_HEADER) {
          throw new Error(`frame header of ${headLength} bytes is over the limit`);
        }
        this.prefix = { kind: all[0], headLength, bodyLength: all.readUInt32BE(5) };
        this.needed = PREFIX_SIZE + headLength + this.prefix.bodyLength;
        this.chunks = [all];
        continue;
      }
      const { kind, headLength } = this.prefix;
      const headEnd = PREFIX_SIZE + headLength;
      const header = headLength ? JSON.parse(all.toString('utf8', PREFIX_SIZE, headEnd)) : {};
      const body = all.subarray(headEnd, this.needed);
      const rest = all.subarray(this.needed);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.prefix = null;
      this.needed = PREFIX_SIZE;
      this.onFrame(kind, header, body);
    }
  }

  send(kind, header, body = EMPTY, done = undefined) {
    const head = Buffer.from(JSON.stringify(header), 'utf8');
    const prefix = Buffer.allocUnsafe(PREFIX_SIZE);
    prefix.writeUInt8(kind, 0);
    prefix.writeUInt32BE(head.length, 1);
    prefix.writeUInt32BE(body.length, 5);
    this.socket.ref(); // a pending write is work: the loop must not end before it is out
    this.writing += 1;
    this.socket.write(Buffer.concat([prefix, head, body]), () => {
      this.writing -= 1;
      if (this.writing === 0) {
        this.flushed.splice(0).forEach((callback) => callback());
      }
    });
    if (done) {
      this.afterWrites(done);
    }
  }

  /** `callback` once every frame sent so far is out (an exit must not cut a result). */
  afterWrites(callback) {
    if (this.writing === 0) {
      callback();
    } else {
      this.flushed.push(callback);
    }
  }

  /** While the handler works, the socket does not keep the event loop alive. */
  letLoopEmpty() {
    this.socket.unref();
  }

  holdLoop() {
    this.socket.ref();
  }
}

// ---------------------------------------------------------------------------------------
// Loading the handler, in the order Lambda's runtime tries.

function hasTypeModule(folder) {
  // The nearest package.json decides; a node_modules folder or the root ends the search.
  for (let dir = folder; ; dir = path.dirname(dir)) {
    if (dir.endsWith('/node_modules')) {
      return false;
    }
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'));
        if (pkg) {
          return pkg.type === 'module';
        }
      } catch (err) {
        console.warn(
          `${manifest} cannot be read, it will be ignored for ES module detection purposes.`,
          err,
        );
        return false;
      }
    }
    if (dir === path.dirname(dir)) {
      return false;
    }
  }
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  return fs.existsSync(file) ? import(pathToFileURL(file).href) : undefined;
}

async function loadModule(taskRoot, moduleRoot, moduleName) {
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  const plain = requireIfExists(base);
  if (plain) {
    return plain;
  }
  const typeModule = fs.existsSync(base + '.js') && hasTypeModule(path.dirname(base + '.js'));
  if (!typeModule) {
    const commonjs = requireIfExists(base + '.js');
    if (commonjs) {
      return commonjs;
    }
  }
  const loaded =
    (typeModule && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(base + '.cjs');
  if (loaded) {
    return loaded;
  }
  // Last, Node's own resolution from the task root (a package in node_modules, say).
  return require(require.resolve(moduleName, { paths: [taskRoot, moduleRoot] }));
}

async function loadHandler(taskRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying ` +
        'root directories in handler names.',
    );
  }
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) {
    throw new MalformedHandlerName('Bad handler');
  }
  const [, moduleName, handlerPath] = match;
  let module;
  try {
    module = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new UserCodeSyntaxError(err);
    }
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw new ImportModuleError(err);
    }
    throw err;
  }
  const handler = handlerPath.split('.').reduce((object, key) => object && object[key], module);
  if (!handler) {
    throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw new HandlerNotFound(`${fullHandler} is not a function`);
  }
  return handler;
}

function isPromise(value) {
  return value && typeof value.then === 'function';
}

function isAsyncFunction(fn) {
  try {
    return fn.constructor && fn.constructor.name === 'AsyncFunction';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------
// Response streaming: the `awslambda` global of Lambda's Node.js runtime. A streaming
// handler's stream is collected and sent as one result (a buffered invocation).

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';

class HttpResponseStream {
  /** A status and headers ahead of the body: their JSON, then 8 NUL bytes, as Lambda's. */
  static from(stream, prelude) {
    stream.setContentType(HTTP_INTEGRATION);
    const metadata = JSON.stringify(prelude);
    stream._onBeforeFirstWrite = (write) => {
      write(metadata);
      write(new Uint8Array(8));
    };
    return stream;
  }
}

function defineAwsLambdaGlobal(env) {
  const off = env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (off === '1' || off === 'true') {
    return;
  }
  globalThis.awslambda = {
    streamifyResponse: (handler) => {
      handler[STREAMING] = 'response';
      return handler;
    },
    HttpResponseStream,
  };
}

/** The stream a streaming handler writes to; `chunks` collects what it wrote. */
function collectingStream() {
  const chunks = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  stream.contentType = 'application/octet-stream';
  stream.setContentType = (type) => {
    stream.contentType = type;
  };
  let written = false;
  const write = stream.write.bind(stream);
  const end = stream.end.bind(stream);
  const beforeFirst = () => {
    if (!written) {
      written = true;
      stream._onBeforeFirstWrite?.((chunk) => write(chunk));
    }
  };
  stream.write = (chunk, ...rest) => {
    beforeFirst();
    return write(chunk, ...rest);
  };
  stream.end = (chunk, ...rest) => {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      beforeFirst();
    }
    return end(chunk, ...rest);
  };
  return { stream, chunks };
}

// ---------------------------------------------------------------------------------------
// The worker.

const NO_OP = () => {};

class Runtime {
  constructor(fd) {
    this.state = 'waiting'; // waiting -> init -> ready (or gone)
    this.boot = null;
    this.handler = null;
    this.handlerIsAsync = false;
    this.streaming = false; // awslambda.streamifyResponse(handler)
    this.current = null; // the invocation not yet answered
    this.onLoopEmpty = NO_OP; // what an empty event loop means for the current invocation
    this.channel = new Channel(
      fd,
      (kind, header, body) => this.onFrame(kind, header, body),
      () => this.onClosed(),
    );
  }

  onFrame(kind, header, body) {
    if (kind === BOOT && this.state === 'waiting') {
      this.state = 'init';
      this.init(header).catch((err) => this.fail(err, EXIT_UNCAUGHT));
    } else if (kind === INVOKE && this.state === 'ready' && this.current === null) {
      this.invoke(header, body);
    } else {
      throw new Error(`unexpected frame kind ${kind} in state ${this.state}`);
    }
  }

  onClosed() {
    process.exit(0); // SHUTDOWN: the server closed the socket
  }

  becomeFunction(boot) {
    for (const key of Object.keys(process.env)) {
      delete process.env[key];
    }
    const env = boot.env || {};
    Object.assign(process.env, env);
    if (!('NODE_PATH' in env)) {
      process.env.NODE_PATH = nodePath(boot).join(':');
    }
    require('module')._initPaths(); // NODE_PATH is read at startup; read it again
    process.chdir(boot.task_root);
    process.argv.length = 2;
    patchConsole(process.env);
    defineAwsLambdaGlobal(process.env);
  }

  async init(boot) {
    const started = performance.now();
    this.boot = boot;
    this.becomeFunction(boot);
    const loading = performance.now();
    this.channel.letLoopEmpty(); // an import that never settles must not hang forever
    let handler;
    try {
      handler = await loadHandler(boot.task_root, boot.handler);
      const streaming = handler[STREAMING];
      if (streaming !== undefined && streaming !== null && streaming !== false) {
        if (streaming !== 'response') {
          throw new MalformedStreamingHandler('Only response streaming is supported.');
        }
        this.streaming = true;
      }
    } catch (err) {
      logFailure('Uncaught Exception', err);
      this.fail(err, EXIT_UNCAUGHT);
      return;
    }
    this.handler = handler;
    this.handlerIsAsync = isAsyncFunction(handler);
    this.state = 'ready';
    const now = performance.now();
    this.channel.send(READY, {
      boot_ms: loading - started,
      import_ms: now - loading,
      max_memory_kb: maxMemoryKb(),
    });
  }

  /** Node saw nothing left to do (`beforeExit`). */
  loopEmpty() {
    if (this.state === 'init') {
      process.exit(EXIT_UNSETTLED_INIT);
    }
    const listener = this.onLoopEmpty;
    this.onLoopEmpty = NO_OP;
    listener();
  }

  invoke(header, body) {
    const requestId = header.request_id;
    const invocation = { requestId, started: performance.now() };
    this.current = invocation;
    currentRequestId = requestId;
    // As Lambda's runtime does: the invocation's X-Ray trace header, for SDKs that read it.
    if (header.trace_id) {
      process.env._X_AMZN_TRACE_ID = header.trace_id;
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    this.channel.letLoopEmpty();
    const [callback, context] = this.callbackContext(invocation);
    Object.assign(context, {
      functionVersion: this.boot.version,
      functionName: this.boot.function_name,
      memoryLimitInMB: String(this.boot.memory_mb),
      logGroupName: this.boot.log_group,
      logStreamName: this.boot.log_stream,
      clientContext: header.client_context ?? undefined,
      identity: header.identity ?? undefined,
      invokedFunctionArn: header.invoked_arn ?? this.boot.arn,
      awsRequestId: requestId,
      getRemainingTimeInMillis: () => header.deadline_ms - Date.now(),
    });
    if (this.streaming) {
      this.invokeStreaming(invocation, context, body);
      return;
    }
    const { succeed, fail } = context;
    try {
      // A handler that never calls back and returns nothing answers null when the loop
      // empties; an async one whose promise never settles fails.
      this.onLoopEmpty = () => {
        if (this.handlerIsAsync) {
          const error = new NodeJsExit();
          logFailure('Invoke Error', error);
          this.respondError(invocation, error);
        } else {
          this.respond(invocation, null);
        }
      };
      const event = body.length ? JSON.parse(body.toString('utf8')) : {};
      const result = this.handler(event, context, callback);
      if (isPromise(result)) {
        result.then(succeed, fail).catch(fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  /** A streaming handler, `(event, responseStream, context)`: what it writes until it ends
   * the stream is the result, once its promise settles. */
  invokeStreaming(invocation, context, body) {
    const fail = (err) => {
      logFailure('Invoke Error', err);
      this.respondError(invocation, err);
    };
    const { stream, chunks } = collectingStream();
    this.onLoopEmpty = () => fail(new NodeJsExit());
    try {
      const event = body.length ? JSON.parse(body.toString('utf8')) : {};
      const result = this.handler(event, stream, context);
      if (!isPromise(result)) {
        fail('Streaming does not support non-async handlers.');
        return;
      }
      result.then((value) => {
        if (value !== undefined) {
          console.warn('Streaming handlers ignore return values.');
        }
        if (!stream.writableEnded) {
          fail('Response stream is not finished.');
          return;
        }
        const send = () =>
          this.sendResult(invocation, true, Buffer.concat(chunks), undefined, {
            content_type: stream.contentType,
          });
        if (stream.writableFinished) {
          send();
        } else {
          stream.once('finish', send); // end() was called; its last write is a tick away
        }
      }, fail);
    } catch (err) {
      fail(err);
    }
  }

  /** `callback`, and the context's succeed/fail/done; only the first call of any counts. */
  callbackContext(invocation) {
    let waitForEmptyEventLoop = true;
    const postError = (err) => {
      logFailure('Invoke Error', err);
      this.respondError(invocation, err);
    };
    const complete = (result) => {
      if (this.current !== invocation) {
        console.error(
          'Invocation has already been reported as done. Cannot call complete more than ' +
            'once per invocation.',
        );
        return;
      }
      this.respond(invocation, result);
    };
    // Only the invocation still running owns what an empty loop means.
    const ownsLoop = () => this.current === invocation;
    const callback = (err, result) => {
      if (ownsLoop()) {
        this.onLoopEmpty = NO_OP;
      }
      if (err !== undefined && err !== null) {
        postError(err);
      } else if (!waitForEmptyEventLoop) {
        complete(result);
      } else if (ownsLoop()) {
        this.onLoopEmpty = () => setImmediate(() => complete(result));
      } else {
        complete(result);
      }
    };
    const done = (err, result) => {
      if (ownsLoop()) {
        this.onLoopEmpty = NO_OP;
      }
      if (err !== undefined && err !== null) {
        postError(err);
      } else {
        complete(result);
      }
    };
    let finished = false;
    const firstCallOnly =
      (fn) =>
      (...args) => {
        if (!finished) {
          fn(...args);
          finished = true; // after the call: a result that fails to serialize may still fail
        }
      };
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
      succeed: firstCallOnly((result) => done(null, result)),
      fail: firstCallOnly((err) =>
        err === undefined || err === null ? done('handled') : done(err, null),
      ),
      done: firstCallOnly(done),
    };
    return [firstCallOnly(callback), context];
  }

  respond(invocation, result) {
    let payload;
    try {
      payload = JSON.stringify(result === undefined ? null : result);
    } catch {
      throw new Error('Unable to stringify response body');
    }
    this.sendResult(invocation, true, Buffer.from(payload, 'utf8'));
  }

  respondError(invocation, err, done) {
    const error = errorResponse(err);
    this.sendResult(invocation, false, Buffer.from(JSON.stringify(error), 'utf8'), done);
  }

  sendResult(invocation, ok, payload, done, extra = undefined) {
    if (this.current !== invocation) {
      return;
    }
    this.current = null;
    this.onLoopEmpty = NO_OP;
    const header = {
      ok,
      duration_ms: performance.now() - invocation.started,
      max_memory_kb: maxMemoryKb(),
      ...extra,
    };
    if (this.state === 'gone') {
      header.exiting = true; // this environment ends after this result: not to be reused
    }
    this.channel.send(RESULT, header, payload, done);
  }

  /** An error the function did not handle: it fails INIT or the current invocation, then
   * the environment exits, as Lambda's does. */
  fail(err, exitCode) {
    if (this.state === 'gone') {
      return; // already failing: the exit follows its frame
    }
    const exit = () => this.channel.afterWrites(() => process.exit(exitCode));
    if (this.state === 'init') {
      this.state = 'gone';
      this.channel.send(INIT_ERROR, { error: errorResponse(err) }, EMPTY, exit);
    } else if (this.current !== null) {
      this.state = 'gone';
      this.respondError(this.current, err, exit);
    } else {
      this.state = 'gone';
      exit();
    }
  }
}

function nodePath(boot) {
  // Lambda's NODE_PATH, with the function's own code where /var/task is.
  const runtime = /nodejs(\d+)/.exec(boot.env?.AWS_EXECUTION_ENV || '');
  const major = runtime ? runtime[1] : process.versions.node.split('.')[0];
  return [
    ...(boot.paths || []),
    `/opt/nodejs/node${major}/node_modules`,
    '/opt/nodejs/node_modules',
    path.join(__dirname, 'node_modules'),
    __dirname,
    boot.task_root,
  ];
}

function maxMemoryKb() {
  return process.resourceUsage().maxRSS;
}

function main() {
  const fd = Number.parseInt(process.argv[2], 10);
  if (!Number.isInteger(fd) || fd < 0) {
    process.stderr.write('usage: node bootstrap.js CONTROL_FD\n');
    process.exit(2);
  }
  replaceStdio();
  const runtime = new Runtime(fd);
  process.on('uncaughtException', (err) => {
    logFailure('Uncaught Exception', err);
    runtime.fail(err, EXIT_UNCAUGHT);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const err = new UnhandledPromiseRejection(reason, promise);
    logFailure('Unhandled Promise Rejection', err);
    runtime.fail(err, EXIT_UNHANDLED_REJECTION);
  });
  process.on('beforeExit', () => runtime.loopEmpty());
  warmUp();
}

/** While the spare waits for its BOOT: run, once, what every INIT needs (the ES module loader
 * among them), so that a cold start pays for the function's own code only. Touches nothing
 * of any function. */
function warmUp() {
  util.format('%s %o', 'warm', { up: [1] });
  JSON.stringify(JSON.parse('{"a":[1,"b",null]}'));
  new Date().toISOString();
  fs.existsSync(path.resolve(__dirname, 'package.json'));
  hasTypeModule(__dirname);
  process.resourceUsage();
  performance.now();
  import(pathToFileURL(path.join(__dirname, 'warm.mjs')).href).catch(() => {});
}

main();
