#!/usr/bin/env node
// The last step of `npm run build`, after tsc: copies what the compiled code reads at run time
// besides JavaScript (the SQL migrations, next to dist/shared/db/migrate.js as in the sources),
// then writes dist/.built, the stamp bin/quayfleet.js compares with the sources' times.
import fs from 'node:fs';

fs.rmSync('dist/shared/db/migrations', { recursive: true, force: true });
fs.cpSync('shared/db/migrations', 'dist/shared/db/migrations', { recursive: true });
fs.writeFileSync('dist/.built', `${new Date().toISOString()}\n`);
