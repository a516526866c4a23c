import { open, rename, rm } from 'node:fs/promises';
import type { Context } from './context.js';

export interface BackupOptions {
  output: string;
}

/**
 * `ioasctl system backup -o FILE`: GET /v1/system/backup into FILE. The bytes go to FILE.partial
 * first and take FILE's name only once all of them arrived, so FILE is never a cut-off copy.
 */
export async function backupCommand(ctx: Context, options: BackupOptions): Promise<void> {
  const partial = `${options.output}.partial`;
  const file = await open(partial, 'w', 0o600);
  let bytes: number;
  try {
    bytes = await ctx.client().download('/v1/system/backup', async (chunk) => {
      await file.write(chunk);
    });
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(partial, { force: true });
    throw err;
  }
  await file.close();
  await rename(partial, options.output);
  ctx.io.out((ctx.json ? JSON.stringify({ file: options.output, bytes }) : `wrote ${bytes} bytes to ${options.output}`) + '\n');
}
