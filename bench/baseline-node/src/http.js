// The HTTP API (PROTOCOL.md §9) on Express: the same rules as the socket events, with
// errors as { error, message, correlationId } and the matching status.

import express from 'express';
import { ChatError, HTTP_STATUS, describeFailure, forbidden, validation } from './errors.js';
import { bearerToken } from './auth.js';
import * as validate from './validation.js';

/**
 * @param {object} deps  config, verifier, chats (service), metrics, adminView()
 */
export function createHttpApp({ config, verifier, chats, metrics, adminView }) {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.get('/healthz', (req, res) => res.json({ status: 'ok', storage: 'memory' }));

  app.get('/metrics', async (req, res, next) => {
    try {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    } catch (err) {
      next(err);
    }
  });

  const api = express.Router();
  api.use((req, res, next) => {
    req.principal = verifier.verify(bearerToken(req.headers.authorization));
    next();
  });
  api.use(express.json({ limit: config.maxPayloadBytes }));

  api.get('/chats', (req, res) => {
    res.json({ chats: chats.listChats(req.principal.userId) });
  });

  api.post('/chats', (req, res) => {
    const input = validate.createChat(req.body, 'request body');
    const { chat, created } = chats.createChat(req.principal.userId, input);
    res.status(created ? 201 : 200).json({ chat });
  });

  api.get('/chats/:chatId/messages', (req, res) => {
    const query = validate.historyQuery(req.query);
    const chatId = validate.pathId(req.params.chatId, 'chatId');
    res.json(chats.history(req.principal.userId, chatId, query));
  });

  api.patch('/chats/:chatId', (req, res) => {
    const chatId = validate.pathId(req.params.chatId, 'chatId');
    const { title } = validate.renameBody(req.body);
    res.json({ chat: chats.rename(req.principal.userId, chatId, title) });
  });

  api.post('/chats/:chatId/members', (req, res) => {
    const chatId = validate.pathId(req.params.chatId, 'chatId');
    const { userId } = validate.addMemberBody(req.body);
    res.json({ chat: chats.addMember(req.principal.userId, chatId, userId) });
  });

  api.delete('/chats/:chatId/members/:userId', (req, res) => {
    const chatId = validate.pathId(req.params.chatId, 'chatId');
    const userId = validate.pathId(req.params.userId, 'userId');
    res.json({ chat: chats.removeMember(req.principal.userId, chatId, userId) });
  });

  api.get('/admin/sockets', (req, res) => {
    if (!req.principal.admin) throw forbidden('admin only');
    res.json(adminView());
  });

  app.use('/api/v1', api);

  app.use((req, res, next) => next(new ChatError('NOT_FOUND', `no route ${req.method} ${req.path}`)));

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    let error = err;
    if (err?.type === 'entity.too.large') {
      error = new ChatError('PAYLOAD_TOO_LARGE', `request body larger than ${config.maxPayloadBytes} bytes`);
    } else if (typeof err?.type === 'string' && err.status >= 400 && err.status < 500) {
      // body-parser: malformed JSON, unsupported charset or encoding.
      error = validation(`request body must be JSON (${err.message})`);
    } else if (!(err instanceof ChatError) && err?.status >= 400 && err.status < 500) {
      // Express: a path parameter that is not valid percent-encoding, and the like.
      error = validation(err.message);
    }
    const failure = describeFailure(error, { method: req.method, path: req.path });
    res.status(HTTP_STATUS[failure.error] ?? 500).json(failure);
  });

  return app;
}
