#!/usr/bin/env node
// Committed bin shim: exists before `npm run build`, so `npm ci` links it into node_modules/.bin.
import { startBuilt } from './start-built.js';

await startBuilt('medvault-controller', 'main.js');
