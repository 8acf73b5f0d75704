// A syntax error, on purpose.
exports.handler = async () => {
  return 1 +;
};
