#!/usr/bin/env node
// The development entry: runs the TypeScript sources through tsx (a dev
// dependency), so an edit needs no rebuild. `npm start` and the images run the
// compiled JavaScript in dist/ instead (`npm run build`, then
// `node dist/cli/flota.js`), with no transpiler loaded.
import { register } from 'tsx/esm/api';

register();
await import('../cli/flota.ts');
