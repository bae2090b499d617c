import type { Core, QueueStatsView } from '@concert/core';
import client from 'prom-client';

/** Prometheus metrics (served by createMetricsServer): one registry per process. */
export function createMetrics(core: Core) {
  const registry = new client.Registry();
  // prom-client's own names start with process_ and nodejs_ already.
  client.collectDefaultMetrics({ register: registry, prefix: 'concert_' });

  const duration = new client.Histogram({
    name: 'concert_procedure_duration_seconds',
    help: 'tRPC procedure latency, by procedure and outcome (ok or the appCode)',
    labelNames: ['procedure', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const errors = new client.Counter({
    name: 'concert_errors_total',
    help: 'Errors answered, by appCode',
    labelNames: ['app_code'] as const,
    registers: [registry],
  });
  const holds = new client.Counter({
    name: 'concert_holds_total',
    help: 'Seat holds made, cancelled (by user or operator) and expired (marked by the sweep)',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const payments = new client.Counter({ name: 'concert_payments_total', help: 'Completed payments', registers: [registry] });
  const paymentsWon = new client.Counter({ name: 'concert_payments_won_total', help: 'Won taken by completed payments', registers: [registry] });

  // Read once per scrape (render), not once per gauge: each read settles every line.
  let lines: QueueStatsView[] = [];
  const queueGauge = (name: string, help: string, pick: (s: QueueStatsView) => number) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['concert'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of lines) this.set({ concert: String(s.concertId) }, pick(s));
      },
    });
  queueGauge('concert_queue_waiting', 'People waiting in line, per concert', (s) => s.waiting);
  queueGauge('concert_queue_active', 'ACTIVE queue tokens, per concert', (s) => s.active);
  queueGauge('concert_queue_admitted', 'Admissions since the line began, per concert (a counter kept in the queue store)', (s) => s.admittedTotal);
  queueGauge('concert_queue_admitted_last_minute', 'Admissions in the last minute, per concert', (s) => s.admittedLastMinute);

  new client.Counter({
    name: 'concert_seatmap_loads_total',
    help: 'Seat maps read from the database (the rest are served from the cache)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(core.seatMaps.loadCount);
    },
  });

  new client.Gauge({
    name: 'concert_db_pool_connections',
    help: 'PostgreSQL pool connections by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const p = core.poolStats();
      if (!p) return;
      this.set({ state: 'total' }, p.total);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
    },
  });

  return {
    registry,
    /** The text of one scrape. */
    async render(): Promise<string> {
      lines = await core.queue.allStats().catch(() => []);
      return registry.metrics();
    },
    /** Records one finished procedure call. */
    observe(procedure: string, outcome: string, seconds: number, result?: unknown) {
      duration.observe({ procedure, outcome }, seconds);
      if (outcome !== 'ok') {
        errors.inc({ app_code: outcome });
        return;
      }
      if (procedure === 'reservations.hold') holds.inc({ event: 'made' });
      else if (procedure === 'reservations.cancel' || procedure === 'admin.holds.release') holds.inc({ event: 'cancelled' });
      else if (procedure === 'payments.pay') {
        payments.inc();
        paymentsWon.inc((result as { amount?: number } | undefined)?.amount ?? 0);
      }
    },
    holdsExpired(n: number) {
      holds.inc({ event: 'expired' }, n);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
