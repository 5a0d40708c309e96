// core-keepalive — TCP keepalive on both sides of the proxy (proxy.tcp_keepalive*), so that
// NAT and firewall mappings of week-long idle WebSockets stay alive: `ss -o` (iproute2) shows
// a keepalive timer on the client's connection to ott-edge and on ott-edge's connection to
// the upstream, counting down from proxy.tcp_keepalive_idle; with proxy.tcp_keepalive off
// there is none.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, startUpstream, openWs, runProcess, slow, waitFor } from '../lib/harness.mjs';

const T = 30000 * slow;

/** The `timer:(...)` of every established TCP socket matching the ss filter, e.g. "keepalive,6.9sec,0". */
async function timers(filter) {
    const r = await runProcess('/usr/bin/ss', ['-tnoH', 'state', 'established', filter]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => /timer:\(([^)]*)\)/.exec(l)?.[1] ?? 'none');
}

/** Timers once the sockets are quiet (a retransmit timer, "on", shows while data is unacknowledged). */
async function quietTimers(filter) {
    let last;
    await waitFor(async () => {
        last = await timers(filter);
        return last.length > 0 && last.every((t) => !t.startsWith('on'));
    }, 5000, `quiet sockets for ${filter}`).catch(() => {});
    return last;
}

/** Seconds left on a keepalive timer. iproute2 6.1 prints e.g. "keepalive,59sec,0",
 *  "keepalive,1min2sec,0", or for a fraction "keepalive,6.948ms,0" (seconds, despite the unit). */
function seconds(t) {
    const m = /keepalive,(?:(\d+)min)?(\d+)(\.\d+)?(ms|sec)/.exec(t);
    if (!m) return NaN;
    const whole = Number(m[2]) + (m[3] ? Number(m[3]) : 0);
    return 60 * Number(m[1] || 0) + (m[4] === 'ms' && !m[3] ? whole / 1000 : whole);
}

describe('TCP keepalive on client and upstream connections', () => {
    let up;
    before(async () => {
        up = await startUpstream();
    });
    after(async () => {
        await up?.stop();
    });

    it('an open WebSocket has keepalive timers on both hops, from proxy.tcp_keepalive_idle', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, proxy: { tcp_keepalive_idle: '7s', tcp_keepalive_interval: '2s', tcp_keepalive_count: 3 } } });
        try {
            const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/ka`);
            await ws.nextJson();
            const client = await quietTimers(`( sport = :${edge.httpsPort} )`);
            const upstream = await quietTimers(`( dport = :${up.port} )`);
            assert.ok(client.length >= 1 && client.every((t) => t.startsWith('keepalive')), `client side: ${client}`);
            assert.ok(upstream.length >= 1 && upstream.every((t) => t.startsWith('keepalive')), `upstream side: ${upstream}`);
            for (const t of [...client, ...upstream]) assert.ok(seconds(t) > 0 && seconds(t) <= 7, `timer ${t} is not within 7 s`);
            ws.close();
        } finally {
            await edge.stop();
        }
    });

    it('the default is on, 60 s before the first probe', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url } });
        try {
            const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/ka2`);
            await ws.nextJson();
            const all = [...(await quietTimers(`( sport = :${edge.httpsPort} )`)), ...(await quietTimers(`( dport = :${up.port} )`))];
            assert.ok(all.length >= 2 && all.every((t) => seconds(t) > 50 && seconds(t) <= 60), `timers ${all}`);
            ws.close();
        } finally {
            await edge.stop();
        }
    });

    it('proxy.tcp_keepalive: false leaves both hops without keepalive', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, proxy: { tcp_keepalive: false } } });
        try {
            const ws = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/ka3`);
            await ws.nextJson();
            const client = await quietTimers(`( sport = :${edge.httpsPort} )`);
            const upstream = await quietTimers(`( dport = :${up.port} )`);
            assert.ok(client.length >= 1 && client.every((t) => !t.startsWith('keepalive')), `client side: ${client}`);
            assert.ok(upstream.length >= 1 && upstream.every((t) => !t.startsWith('keepalive')), `upstream side: ${upstream}`);
            ws.close();
        } finally {
            await edge.stop();
        }
    });
});
