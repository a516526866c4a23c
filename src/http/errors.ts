import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { IoasdError, type FieldProblem } from '../core/errors.js';
import { errnoOfIssues } from '../schemas/problems.js';
import { statusOf, titleOf, type WireErrno } from './errno-status.js';
import type { Problem } from './schemas/problem.js';

const PROBLEM_TYPE = 'application/problem+json';

/** Fastify's own client errors that are not schema violations, with the answer each deserves. */
const FASTIFY_CLIENT_ERRORS: Record<string, { status: number; detail: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, detail: 'the body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, detail: 'the body is empty but content-type is application/json' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, detail: 'send JSON (content-type: application/json)' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, detail: 'the body is too large' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, detail: 'content-length does not match the body' },
};

/**
 * A refusal decided by the HTTP layer itself (a limit, a media type, a method), with the status it
 * answers and the errno clients match on. The error handler turns it into problem+json.
 */
export class HttpRefusal extends Error {
  constructor(
    readonly statusCode: number,
    readonly errno: WireErrno,
    detail: string,
    readonly problems?: { path: string; message: string }[],
  ) {
    super(detail);
    this.name = 'HttpRefusal';
  }
}

export function problem(
  request: FastifyRequest,
  errno: WireErrno,
  detail: string,
  extra: { status?: number; blockers?: IoasdError['blockers']; problems?: FieldProblem[] | undefined } = {},
): Problem {
  const p: Problem = {
    type: `urn:ioasd:errno:${errno}`,
    title: titleOf(errno),
    status: extra.status ?? statusOf(errno),
    detail,
    errno,
    instance: request.url,
    requestId: request.id,
  };
  if (extra.blockers) p.blockers = extra.blockers;
  if (extra.problems) p.problems = extra.problems;
  return p;
}

/** Sends a problem; the plain JSON serializer is used so no route schema can turn it into a 500. */
export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type(PROBLEM_TYPE).serializer(JSON.stringify).send(p);
}

/** Turns every error (refusal, bad JSON, schema violation) into problem+json; unknown routes: http/methods.ts. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | IoasdError, request, reply) => {
    if (err instanceof IoasdError) {
      return sendProblem(reply, problem(request, err.errno, err.message, { blockers: err.blockers, problems: err.problems }));
    }
    if (err instanceof HttpRefusal) {
      return sendProblem(reply, problem(request, err.errno, err.message, { status: err.statusCode, problems: err.problems }));
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'body';
      const problems = err.validation.map((v) => ({
        path: `${where}${v.instancePath.replaceAll('/', '.').replace(/\.(\d+)(?=\.|$)/g, '[$1]')}`,
        message: v.message ?? 'invalid',
      }));
      const errno = errnoOfIssues(err.validation.map((v) => v.params as { params?: unknown; errors?: unknown }));
      const detail = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      return sendProblem(reply, problem(request, errno, detail, { problems }));
    }
    const known = err.code ? FASTIFY_CLIENT_ERRORS[err.code] : undefined;
    if (known) return sendProblem(reply, problem(request, 'EINVAL', known.detail, { status: known.status }));
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return sendProblem(reply, problem(request, 'EINVAL', err.message, { status: err.statusCode }));
    }
    request.log.error({ err }, 'unexpected error');
    return reply
      .code(500)
      .type(PROBLEM_TYPE)
      .serializer(JSON.stringify)
      .send({ type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'internal error; see the server log', requestId: request.id });
  });
}
