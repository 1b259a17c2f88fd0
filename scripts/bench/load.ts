/** A small closed-loop HTTP load generator on keep-alive sockets, and percentile helpers. */
import { Agent, request } from 'node:http';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

export const round = (x: number, digits = 1) => Number(x.toFixed(digits));

export interface HttpCall {
  method: 'GET' | 'POST';
  path: string;
  body?: Buffer;
  contentType?: string;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  per_s: number;
  p50_ms: number;
  p99_ms: number;
  statuses: Record<string, number>;
}

/** Sends calls[0..n) with `concurrency` requests in flight; resolves with throughput and latency. */
export async function runLoad(baseUrl: string, calls: (i: number) => HttpCall, n: number, concurrency: number): Promise<LoadResult> {
  const url = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  const one = (call: HttpCall) =>
    new Promise<void>((resolve, reject) => {
      const t0 = performance.now();
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: call.method,
          path: call.path,
          headers: call.body ? { 'content-type': call.contentType ?? 'application/json', 'content-length': call.body.length } : {},
        },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => {
            latencies.push(performance.now() - t0);
            statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(call.body);
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await one(calls(next++));
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: n,
    seconds: round(seconds, 3),
    per_s: round(n / seconds),
    p50_ms: round(percentile(latencies, 50), 2),
    p99_ms: round(percentile(latencies, 99), 2),
    statuses,
  };
}
