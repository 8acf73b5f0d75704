// faasbox's QuickJS runtime: runs one invocation of a Node.js-style handler, then returns.
//
// QuickJS-NG (qjs-wasi-reactor.wasm) runs this module inside faasbox's wasmtime sandbox,
// one fresh instance per invocation (faasbox/execution/wasm/quickjs.py). The function's code
// is preopened read-only at /var/task, this folder at /var/runtime.
//
//   stdin    the event (JSON text), as Lambda's Runtime API hands it to a runtime
//   stdout   the handler's result, JSON.stringify'd (undefined is null); on a failure, the
//            error object {errorType, errorMessage, trace}, and the exit code HANDLER_FAILED
//   stderr   the log: console.* lines as Lambda's Node.js runtime writes them
//            (`<ISO time>\t<request id>\t<LEVEL>\t<message>`)
//
// The handler is `file.export` as for nodejs20.x: file.mjs (an ES module), file.js (CommonJS
// unless the nearest package.json says "type": "module"), or file.cjs; its export is an async
// (event, context) function, or one that takes a callback (event, context, callback).
import * as std from 'qjs:std';
import * as os from 'qjs:os';

const HANDLER_FAILED = 70; // faasbox.execution.wasm.quickjs.HANDLER_FAILED
const TASK_ROOT = '/var/task';
const env = std.getenviron();
const requestId = env.AWS_REQUEST_ID;
const deadlineMs = Number(env.FAASBOX_DEADLINE_MS);

// --- logging -----------------------------------------------------------------------------

function inspect(value, seen = new Set()) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ? `${value.name}: ${value.message}\n${value.stack}`.trimEnd() : String(value);
  if (typeof value === 'function') return `[Function: ${value.name || '(anonymous)'}]`;
  if (typeof value !== 'object' || value === null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// util.format's %s %d %i %f %j %o %O %%, then the rest joined by spaces.
function format(...args) {
  if (typeof args[0] !== 'string') return args.map((a) => inspect(a)).join(' ');
  let i = 1;
  const text = args[0].replace(/%[sdifjoO%]/g, (spec) => {
    if (spec === '%%') return '%';
    if (i >= args.length) return spec;
    const value = args[i++];
    switch (spec) {
      case '%s': return typeof value === 'string' ? value : inspect(value);
      case '%d': case '%i': return String(spec === '%i' ? parseInt(value) : Number(value));
      case '%f': return String(parseFloat(value));
      default: return inspect(value);
    }
  });
  return [text, ...args.slice(i).map((a) => inspect(a))].join(' ');
}

function emit(level, args) {
  std.err.puts(`${new Date().toISOString()}\t${requestId}\t${level}\t${format(...args)}\n`);
  std.err.flush();
}

const at = (level) => (...args) => emit(level, args);
globalThis.console = {
  trace: at('TRACE'),
  debug: at('DEBUG'),
  info: at('INFO'),
  log: at('INFO'),
  warn: at('WARN'),
  error: at('ERROR'),
};

// --- the handler ---------------------------------------------------------------------------

class RuntimeError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

const exists = (file) => os.stat(file)[1] === 0;

function typeModule(folder) {
  for (let dir = folder; dir.startsWith(TASK_ROOT); dir = dir.slice(0, dir.lastIndexOf('/'))) {
    if (dir.endsWith('/node_modules')) return false;
    const manifest = std.loadFile(`${dir}/package.json`);
    if (manifest !== null) {
      try {
        return JSON.parse(manifest).type === 'module';
      } catch {
        return false;
      }
    }
  }
  return false;
}

function requireCommonJs(file) {
  const source = std.loadFile(file);
  const module = { exports: {} };
  const require = (name) => {
    const error = new Error(`Cannot find module '${name}' (the quickjs runtime has no require)`);
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  };
  const dir = file.slice(0, file.lastIndexOf('/'));
  new Function('exports', 'require', 'module', '__filename', '__dirname', source)(
    module.exports, require, module, file, dir,
  );
  return module.exports;
}

async function loadModule(base) {
  if (exists(`${base}.js`)) {
    const dir = base.slice(0, base.lastIndexOf('/'));
    return typeModule(dir) ? import(`${base}.js`) : requireCommonJs(`${base}.js`);
  }
  if (exists(`${base}.mjs`)) return import(`${base}.mjs`);
  if (exists(`${base}.cjs`)) return requireCommonJs(`${base}.cjs`);
  throw new RuntimeError('Runtime.ImportModuleError', `Error: Cannot find module '${base.slice(TASK_ROOT.length + 1)}'`);
}

async function loadHandler(fullHandler) {
  if (fullHandler.includes('..')) {
    throw new RuntimeError('Runtime.MalformedHandlerName', `'${fullHandler}' is not a valid handler name.`);
  }
  const slash = fullHandler.lastIndexOf('/');
  const handlerString = fullHandler.slice(slash + 1);
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new RuntimeError('Runtime.MalformedHandlerName', 'Bad handler');
  const [, moduleName, handlerPath] = match;
  let module;
  try {
    module = await loadModule(`${TASK_ROOT}/${fullHandler.slice(0, slash + 1)}${moduleName}`);
  } catch (error) {
    if (error instanceof SyntaxError) throw new RuntimeError('Runtime.UserCodeSyntaxError', `${error.name}: ${error.message}`);
    if (error && error.code === 'MODULE_NOT_FOUND') throw new RuntimeError('Runtime.ImportModuleError', `Error: ${error.message}`);
    throw error;
  }
  const handler = handlerPath.split('.').reduce((object, key) => object && object[key], module);
  if (!handler) throw new RuntimeError('Runtime.HandlerNotFound', `${fullHandler} is undefined or not exported`);
  if (typeof handler !== 'function') throw new RuntimeError('Runtime.HandlerNotFound', `${fullHandler} is not a function`);
  return handler;
}

function context() {
  const name = env.AWS_LAMBDA_FUNCTION_NAME;
  const region = env.AWS_REGION;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${name}`,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
  };
}

function call(handler, event) {
  if (handler.length < 3) return Promise.resolve().then(() => handler(event, context()));
  return new Promise((resolve, reject) => {
    const callback = (error, result) => (error ? reject(error) : resolve(result));
    const returned = handler(event, context(), callback);
    if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
  });
}

function errorObject(error) {
  if (error instanceof Error) {
    return {
      errorType: error.name,
      errorMessage: error.message,
      trace: [`${error.name}: ${error.message}`, ...String(error.stack || '').split('\n').filter((l) => l)],
    };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

function finish(text, code) {
  std.out.puts(text);
  std.out.flush();
  std.exit(code);
}

try {
  const event = JSON.parse(std.in.readAsString());
  const handler = await loadHandler(env._HANDLER);
  const result = await call(handler, event);
  finish(JSON.stringify(result === undefined ? null : result) ?? 'null', 0);
} catch (error) {
  const body = errorObject(error);
  const label = body.errorType.startsWith('Runtime.') ? 'Uncaught Exception' : 'Invoke Error';
  emit('ERROR', [`${label} \t${JSON.stringify(body)}`]);
  finish(JSON.stringify(body), HANDLER_FAILED);
}
