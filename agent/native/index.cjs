'use strict';
// The compiled addon (node-gyp rebuild at install); see src/fsx.c for each call's contract.
module.exports = require('./build/Release/fsx.node');
