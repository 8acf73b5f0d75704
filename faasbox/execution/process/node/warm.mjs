// Imported by bootstrap.js while a spare waits for BOOT: it warms the ES module loader up.
export default true;
