import type { IncomingHttpHeaders } from 'node:http';
import { type Listening, listen } from './http.js';

/** One span as an OTLP/HTTP JSON export carries it, attributes flattened to plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP numbering: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, unknown>;
  /** 0 unset, 1 ok, 2 error. */
  status: number;
  resource: Record<string, unknown>;
}

export interface OtlpReceiver extends Listening {
  /** Every export request, as received. */
  readonly requests: Array<{ path: string; headers: IncomingHttpHeaders; body: string }>;
  /** Every span received so far. */
  spans(): ReceivedSpan[];
}

type AnyValue = {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
};
type KeyValue = { key: string; value: AnyValue };

const plain = (v: AnyValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue));
const flat = (attrs: KeyValue[] | undefined): Record<string, unknown> =>
  Object.fromEntries((attrs ?? []).map((a) => [a.key, plain(a.value)]));

/**
 * A stand-in OpenTelemetry collector: a real node:http server on port 0 taking OTLP/HTTP JSON at
 * POST /v1/traces. `answer`: the status it replies with (200 by default), or `hang` to never reply.
 */
export async function startOtlpReceiver(answer: number | 'hang' = 200): Promise<OtlpReceiver> {
  const requests: OtlpReceiver['requests'] = [];
  const server = await listen((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body });
      if (answer === 'hang') return;
      res.writeHead(answer, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return {
    ...server,
    requests,
    spans: () =>
      requests.flatMap((r) => {
        if (!r.path.startsWith('/v1/traces') || !r.body.startsWith('{')) return [];
        const doc = JSON.parse(r.body) as {
          resourceSpans?: Array<{
            resource?: { attributes?: KeyValue[] };
            scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }>;
          }>;
        };
        return (doc.resourceSpans ?? []).flatMap((rs) =>
          (rs.scopeSpans ?? []).flatMap((ss) =>
            (ss.spans ?? []).map(
              (s): ReceivedSpan => ({
                traceId: s.traceId as string,
                spanId: s.spanId as string,
                ...(s.parentSpanId ? { parentSpanId: s.parentSpanId as string } : {}),
                name: s.name as string,
                kind: s.kind as number,
                attributes: flat(s.attributes as KeyValue[]),
                status: (s.status as { code?: number } | undefined)?.code ?? 0,
                resource: flat(rs.resource?.attributes),
              }),
            ),
          ),
        );
      }),
  };
}
