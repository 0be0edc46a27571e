// Prometheus metrics (GET /metrics), named as the native server names them.

import client from 'prom-client';

export function createMetrics() {
  const registry = new client.Registry();
  const connections = new client.Gauge({
    name: 'chat_connections',
    help: 'Socket.IO connections open now.',
    registers: [registry],
  });
  const messages = new client.Counter({
    name: 'chat_messages_sent_total',
    help: 'Messages stored and broadcast.',
    registers: [registry],
  });
  const acks = new client.Counter({
    name: 'chat_acks_total',
    help: 'Acknowledgements sent, by result code.',
    labelNames: ['code'],
    registers: [registry],
  });
  return {
    registry,
    socketConnected: () => connections.inc(),
    socketDisconnected: () => connections.dec(),
    messageStored: () => messages.inc(),
    ack: (code) => acks.inc({ code }),
  };
}
