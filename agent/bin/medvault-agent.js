#!/usr/bin/env node
// Committed bin shim: exists before `npm run build`, so `npm ci` links it into node_modules/.bin.
import { main } from '../dist/main.js';

main(process.argv).then((code) => process.exit(code));
