// A Node.js function whose dependency comes from a layer's nodejs/node_modules.
const shout = require('shout');

exports.handler = async (event) => ({ shouted: shout(event.text || 'layers'), from: require.resolve('shout') });
