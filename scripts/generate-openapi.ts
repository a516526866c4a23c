/**
 * Writes openapi/openapi.json from the app's own route schemas. A test fails when the committed
 * file and what the server serves differ, so run this after changing a route or schema.
 */
import { writeFileSync } from 'node:fs';
import { buildApp } from '../src/app.js';

const app = await buildApp({ db: ':memory:', adminToken: 'openapi-generator-token' });
await app.ready();
writeFileSync(new URL('../openapi/openapi.json', import.meta.url), JSON.stringify(app.swagger(), null, 2) + '\n');
await app.close();
console.log('wrote openapi/openapi.json');
