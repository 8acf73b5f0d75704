exports.hello = async () => ({ message: 'Hello' });
