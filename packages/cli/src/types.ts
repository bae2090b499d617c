import type { ApiClient } from './client.ts';

/** The server's answers, as the AppRouter type says they are. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Out<F extends (...args: any[]) => unknown> = Awaited<ReturnType<F>>;

export type ConcertPage = Out<ApiClient['concerts']['list']['query']>;
export type ConcertSummary = ConcertPage['items'][number];
export type ConcertDetail = Out<ApiClient['concerts']['get']['query']>;
export type Schedule = Out<ApiClient['concerts']['schedule']['query']>;
export type SeatMap = Out<ApiClient['concerts']['seats']['query']>;
export type QueueTicket = Out<ApiClient['queue']['status']['query']>;
export type Reservation = Out<ApiClient['reservations']['get']['query']>;
export type ReservationPage = Out<ApiClient['reservations']['mine']['query']>;
export type PaymentResult = Out<ApiClient['payments']['pay']['mutate']>;
export type Balance = Out<ApiClient['balance']['get']['query']>;
export type ChargeResult = Out<ApiClient['balance']['charge']['mutate']>;
export type History = Out<ApiClient['balance']['history']['query']>;
export type HoldPage = Out<ApiClient['admin']['holds']['list']['query']>;
export type HoldSummary = HoldPage['items'][number];
export type QueueStats = Out<ApiClient['admin']['queue']['stats']['query']>;
export type SaleWatch = Out<ApiClient['admin']['watch']['query']>;
export type AuditReport = Out<ApiClient['admin']['audit']['query']>;
export type WaitlistEntry = Out<ApiClient['waitlist']['join']['mutate']>;
export type WaitlistPage = Out<ApiClient['waitlist']['mine']['query']>;
export type AdminConcertPage = Out<ApiClient['admin']['concerts']['list']['query']>;
export type AdminConcert = AdminConcertPage['items'][number];
export type ScheduleCancelResult = Out<ApiClient['admin']['schedules']['cancel']['mutate']>;
export type WebhookCreated = Out<ApiClient['admin']['webhooks']['create']['mutate']>;
export type WebhookSummary = Out<ApiClient['admin']['webhooks']['list']['query']>[number];
export type WebhookDeliveryPage = Out<ApiClient['admin']['webhooks']['deliveries']['query']>;
