// hostile-forwarded — every spoofing variant of the forwarding headers, sent as raw HTTP/1.1
// over TLS from a trusted peer (127.0.0.1) and an untrusted one (127.0.0.2, same edge), must
// reach the upstream exactly as the rules in pkg/proxy/forwarded.h say:
//   untrusted: X-Forwarded-For = peer, X-Real-IP = peer, the real-IP header dropped;
//   trusted: the client's XFF elements that are IPs (rightmost 16) + peer; X-Real-IP = the
//   real-IP header's address if valid, else the rightmost untrusted hop, else the leftmost,
//   else the peer. Always: no Forwarded, one X-Forwarded-Proto (https), one X-Forwarded-Host.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { slow, startUpstream, startEdge } from '../lib/harness.mjs';

const T = 60000 * slow;
const HOST = 'ott.test';
const TRUSTED_PEER = '127.0.0.1';
const UNTRUSTED_PEER = '127.0.0.2';
const TRUSTED = ['127.0.0.1/32', '10.0.0.0/8'];
const REAL_IP = 'CF-Connecting-IP';

/** GET /debug/headers with raw header lines from localAddress; returns the upstream's JSON. */
function rawGet(port, lines, localAddress) {
    return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, localAddress, servername: HOST, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
        const chunks = [];
        const t = setTimeout(() => {
            s.destroy();
            reject(new Error('timeout'));
        }, 5000 * slow);
        s.once('secureConnect', () => s.write(`GET /debug/headers HTTP/1.1\r\nHost: ${HOST}\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`));
        s.on('data', (c) => chunks.push(c));
        s.on('close', () => {
            clearTimeout(t);
            const raw = Buffer.concat(chunks).toString('utf8');
            const m = /\r\n\r\n([\s\S]*)$/.exec(raw);
            if (!/^HTTP\/1\.1 200/.test(raw) || !m) return reject(new Error(`unexpected answer: ${raw.slice(0, 200)}`));
            resolve(JSON.parse(m[1]));
        });
        s.on('error', reject);
    });
}

// ---- the rules, in JavaScript (a second implementation to compare against)
function inCidr(ip, cidr) {
    const [net0, bits] = cidr.split('/');
    const bl = new net.BlockList();
    bl.addSubnet(net0, Number(bits ?? (net.isIPv4(net0) ? 32 : 128)), net.isIPv4(net0) ? 'ipv4' : 'ipv6');
    return bl.check(ip, net.isIPv4(ip) ? 'ipv4' : 'ipv6');
}
const isTrusted = (ip) => TRUSTED.some((c) => net.isIPv4(ip) === net.isIPv4(c.split('/')[0]) && inCidr(ip, c));
function parseIp(s) {
    let v = s.replace(/^[ \t]+|[ \t]+$/g, '');
    if (v.length >= 2 && v[0] === '[' && v[v.length - 1] === ']') v = v.slice(1, -1);
    if (net.isIPv4(v)) return v;
    if (net.isIPv6(v)) {
        const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(v);
        return m ? m[1] : v.toLowerCase();
    }
    return null;
}
function expected(xffLines, realIp, peer) {
    if (!isTrusted(peer)) return { xff: peer, client: peer };
    const hops = xffLines.join(',').split(',').map(parseIp).filter(Boolean).slice(-16);
    const xff = [...hops, peer].join(', ');
    const r = realIp !== undefined ? parseIp(realIp) : null;
    if (r) return { xff, client: r };
    const untrusted = [...hops].reverse().find((h) => !isTrusted(h));
    return { xff, client: untrusted || hops[0] || peer };
}

const values = (j, name) => j.headers.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);

const CASES = [
    { name: 'one spoofed XFF', lines: ['X-Forwarded-For: 1.2.3.4'] },
    { name: 'several XFF lines', lines: ['X-Forwarded-For: 1.2.3.4', 'X-Forwarded-For: 5.6.7.8, 9.9.9.9'] },
    { name: 'mixed-case names', lines: ['x-FORWARDED-for: 1.2.3.4', 'X-Forwarded-FOR: 5.6.7.8', 'FORWARDED: for=6.6.6.6', 'x-real-IP: 7.7.7.7'] },
    { name: 'Forwarded header only', lines: ['Forwarded: for=1.2.3.4;proto=http;host=evil.test', 'Forwarded: for="[2001:db8::1]"'] },
    { name: 'garbage elements', lines: ['X-Forwarded-For: unknown, _hidden, 1.2.3.4:80, [2001:db8::1], ::ffff:10.0.0.1, 300.1.1.1, , 8.8.8.8'] },
    { name: 'empty and comma-only XFF', lines: ['X-Forwarded-For: ', 'X-Forwarded-For: ,,, ,'] },
    { name: 'trusted hops between', lines: ['X-Forwarded-For: 203.0.113.9, 10.1.2.3, 10.4.5.6'] },
    { name: 'only trusted hops', lines: ['X-Forwarded-For: 10.1.2.3, 10.4.5.6'] },
    { name: '20 hops (16 kept)', lines: [`X-Forwarded-For: ${Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`).join(', ')}`] },
    { name: '8 KiB XFF line', lines: [`X-Forwarded-For: ${'1.1.1.1,'.repeat(1000)}2.2.2.2`] },
    { name: 'tabs and brackets', lines: ['X-Forwarded-For:\t[::1] ,\t2001:DB8::5\t'] },
    { name: 'spoofed proto/host/port', lines: ['X-Forwarded-Proto: http', 'X-Forwarded-Host: evil.test', 'X-Forwarded-Port: 80', 'X-Forwarded-For: 1.2.3.4'] },
    { name: 'real-IP header valid', lines: ['X-Forwarded-For: 1.2.3.4', `${REAL_IP}: 203.0.113.50`], realIp: '203.0.113.50' },
    { name: 'real-IP header garbage', lines: ['X-Forwarded-For: 1.2.3.4', `${REAL_IP}: not-an-ip`], realIp: 'not-an-ip' },
    { name: 'real-IP header mixed case, v6', lines: [`cf-CONNECTING-ip: [2001:db8::77]`], realIp: '[2001:db8::77]' },
];

describe('forwarding headers from trusted and untrusted peers', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url, proxy: { trusted_proxies: TRUSTED, real_ip_header: REAL_IP } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    for (const peer of [UNTRUSTED_PEER, TRUSTED_PEER]) {
        const who = peer === TRUSTED_PEER ? 'trusted' : 'untrusted';
        it(`every spoofing variant from the ${who} peer ${peer} reaches the upstream exactly by the rules`, { timeout: T }, async () => {
            for (const c of CASES) {
                const j = await rawGet(edge.httpsPort, c.lines, peer);
                const xffLines = c.lines.filter((l) => /^x-forwarded-for:/i.test(l)).map((l) => l.slice(l.indexOf(':') + 1));
                const want = expected(xffLines, c.realIp, peer);
                const ctx = `${who} / ${c.name}: upstream saw ${JSON.stringify(j.headers.filter(([k]) => /forward|real|connecting/i.test(k)))}`;
                assert.deepEqual(values(j, 'x-forwarded-for'), [want.xff], ctx);
                assert.deepEqual(values(j, 'x-real-ip'), [want.client], ctx);
                assert.deepEqual(values(j, 'forwarded'), [], ctx);
                assert.deepEqual(values(j, 'x-forwarded-proto'), ['https'], ctx);
                assert.deepEqual(values(j, 'x-forwarded-host'), [HOST], ctx);
                assert.deepEqual(values(j, 'x-forwarded-port'), [], ctx);
                const real = values(j, REAL_IP);
                if (peer === TRUSTED_PEER) assert.deepEqual(real, c.realIp !== undefined ? [c.lines.find((l) => /^cf-connecting-ip:/i.test(l)).split(': ')[1]] : [], ctx);
                else assert.deepEqual(real, [], `${ctx}: the real-IP header from an untrusted peer must be dropped`);
            }
        });
    }
});
