/**
 * DATA/status.json: what a running node knows about its Tor side, for `p2pdb status` on the
 * same machine. Written only when it changes, atomically, mode 0600; holds no key material (only the local control token, hence 0600).
 * (Not served over HTTP: the HTTP port is the public onion service.)
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { OnionService } from './onion-service.js';

export interface NodeStatus {
  onion: string;
  tor: {
    mode: string;
    bootstrap?: { progress: number; summary: string };
    published: boolean;
    lastError?: string;
    /** Authorized client keys the onion is published with: > 0 is a private node. */
    clients?: number;
    /** The node dialling its own onion through its tor: the last success (ms), failures in a row. */
    selfCheck?: { lastOkAt?: number; consecutiveFailures: number; lastFailure?: string; republishes: number; torRestarts: number };
  };
  updated_at: number;
  /** The node's process: a reader can tell a running node from one that was killed. */
  pid?: number;
  /** Set by a node that stopped cleanly: what the file says is then history. */
  stopped_at?: number;
  /** The local control listener (src/node/control.ts): 127.0.0.1 only; the token is why this file is 0600. */
  control?: { url: string; token: string };
}

export function statusFile(dataDir: string): string {
  return path.join(dataDir, 'status.json');
}

/**
 * Whether the node that wrote a status file still runs: 'stopped' (it said so when it
 * stopped), 'gone' (its process no longer exists: killed or crashed), 'running', or
 * 'unknown' (a file from before pids were recorded).
 */
export function statusLiveness(status: NodeStatus): 'running' | 'stopped' | 'gone' | 'unknown' {
  if (status.stopped_at !== undefined) return 'stopped';
  if (status.pid === undefined) return 'unknown';
  try {
    process.kill(status.pid, 0);
    return 'running';
  } catch (e) {
    // EPERM: it exists but belongs to someone else, so it runs.
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'running' : 'gone';
  }
}

export function readNodeStatus(dataDir: string): NodeStatus | undefined {
  try {
    return JSON.parse(readFileSync(statusFile(dataDir), 'utf8')) as NodeStatus;
  } catch {
    return undefined;
  }
}

/** Keeps DATA/status.json current while the node runs; returns a stop function. */
export function keepStatusFile(
  dataDir: string,
  mode: string,
  onion: OnionService,
  everyMs = 500,
  control?: NodeStatus['control'],
): () => void {
  let last = '';
  let stoppedAt: number | undefined;
  const write = () => {
    const s = onion.state();
    const tor: NodeStatus['tor'] = {
      mode,
      bootstrap: s.bootstrap,
      published: s.published,
      ...(s.lastError ? { lastError: `${s.lastError.code}: ${s.lastError.message}` } : {}),
      clients: s.clientAuth.clients,
      selfCheck: {
        ...(s.selfCheck.lastOkAt !== undefined ? { lastOkAt: s.selfCheck.lastOkAt } : {}),
        consecutiveFailures: s.selfCheck.consecutiveFailures,
        ...(s.selfCheck.lastFailure !== undefined ? { lastFailure: s.selfCheck.lastFailure } : {}),
        republishes: s.selfCheck.republishes,
        torRestarts: s.selfCheck.torRestarts,
      },
    };
    const key = JSON.stringify([tor, stoppedAt]);
    if (key === last) return;
    last = key;
    const file = statusFile(dataDir);
    const body: NodeStatus = {
      onion: onion.address,
      tor,
      updated_at: Date.now(),
      pid: process.pid,
      ...(stoppedAt !== undefined ? { stopped_at: stoppedAt } : {}),
      ...(control && stoppedAt === undefined ? { control } : {}),
    };
    writeFileSync(file + '.tmp', JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
    renameSync(file + '.tmp', file);
  };
  write();
  const timer = setInterval(write, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    // The last word: stopped, so readers do not take the onion and control address as live.
    stoppedAt = Date.now();
    write();
  };
}
