const ms = require("ms");

exports.duration = async (event) => {
  let devDependency = true;
  try {
    require.resolve("left-pad");
  } catch (e) {
    devDependency = false;
  }
  return { ms: ms(event.text || "2h"), devDependencyPackaged: devDependency };
};
