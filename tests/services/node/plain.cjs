// A .cjs handler.
exports.handler = async () => 'cjs';
