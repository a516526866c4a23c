import { explain, gatherFacts, toText, WhyError, type Api } from '../http/ui/why.js';
import { CliError, describeProblem, type Problem } from './client.js';
import { EXIT, exitForProblem, type ExitCode } from './exit-codes.js';
import type { Context } from './context.js';

/**
 * `ioasctl why DEVICE [--context ID]`: the topology page's explanation (src/http/ui/why.js, the one
 * place the reasoning and its words live), asked through this client and worded for a terminal,
 * with the fixes as ioasctl commands. Without --context it dry-runs in the context holding the
 * group if it is the caller's, else the caller's first, else a temporary context deleted again
 * before the answer. Exits 0 when the device can be taken (or is already the caller's), else with
 * the status of the errno the server refuses with first.
 */
export async function whyCommand(ctx: Context, deviceId: string, options: { context?: string }): Promise<ExitCode> {
  const client = ctx.client();
  // why.js reads refusals as answers; only a failure to reach the server throws.
  const api: Api = async (method, path, body) => {
    try {
      const answer = await client.request(method, path, body === undefined ? {} : { body });
      return { status: answer.status, body: answer.body };
    } catch (err) {
      if (err instanceof CliError && err.problem) return { status: err.problem.status, body: err.problem };
      throw err;
    }
  };
  let facts;
  try {
    facts = await gatherFacts(api, deviceId, { temporaryContext: true, ...(options.context !== undefined ? { contextId: options.context } : {}) });
  } catch (err) {
    if (!(err instanceof WhyError)) throw err;
    const problem = { ...(err.body as Problem), status: err.status };
    throw new CliError(describeProblem(problem), exitForProblem(err.status, problem.errno), problem);
  }
  const x = explain(facts, { commands: 'ioasctl' });
  ctx.io.out(ctx.json ? JSON.stringify(x, null, 2) + '\n' : toText(x) + '\n');
  if (x.verdict === 'yes' || x.verdict === 'yours') return EXIT.ok;
  if (x.verdict === 'unknown') return exitForProblem(404, x.errno ?? undefined);
  return exitForProblem(x.dryRun && !x.dryRun.ok ? x.dryRun.status : 409, x.errno ?? undefined);
}
