import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/**
 * Route options for a route whose body fields are all optional (context create and renew, detach):
 * a request sent without a body (no content, `content-length: 0`, with or without a JSON
 * content type) is taken as `{}` instead of being refused as an empty or missing body.
 */
export const absentBodyIsEmptyObject = {
  onRequest(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const { headers } = request;
    const noContent = headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0');
    // Without a content type Fastify parses nothing, so no empty-JSON refusal; preValidation supplies {}.
    if (noContent) delete headers['content-type'];
    done();
  },
  preValidation(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    if (request.body === undefined || request.body === null) request.body = {};
    done();
  },
};
