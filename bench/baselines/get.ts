/** Baseline of the read figures: bare Fastify answering GET /small with a small object. */
import Fastify from 'fastify';
import { serve } from './common.js';

const app = Fastify({ logger: false });
app.get('/small', async () => ({ id: 1, name: 'bench', viable: true, devices: ['0000:00:02.0'] }));
await serve(app);
