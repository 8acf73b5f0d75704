// Beside twice.mjs: without "type": "module", the .js is loaded first.
exports.handler = async () => 'js';
