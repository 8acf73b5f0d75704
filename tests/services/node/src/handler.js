// A handler in a subfolder: `src/handler.main`.
exports.main = async () => 'from src';
