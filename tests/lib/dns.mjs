// dns — real DNS servers on loopback for the DNS-01 tests: Debian's knotd, authoritative
// for the test zones, accepting RFC 2136 updates signed with a TSIG key; and Debian's
// unbound in front of it as the recursive resolver a CA uses (authoritative servers do not
// follow a CNAME into another zone; a CA's resolver does). Pebble is pointed at unbound
// (`startPebble({dnsServer: dns.recursor})`), so its DNS-01 validation really reads the TXT
// records ott-edge wrote. unbound refuses every name outside the test zones: nothing
// leaves loopback. Both run on free ports, in a tmp dir removed at exit.
//
// API:
//   startDns({zones, records, recursor}) -> dns object:
//     zones:   ['ott.test', ...]  each gets SOA (negative TTL 1 s), NS ns1.<zone>, ns1 A 127.0.0.1
//     records: {'ott.test': ['_acme-challenge.sub CNAME _acme-challenge.sub.delegated.test.'], ...}
//     recursor: start unbound too (default true)
//   dns: {port, server ('127.0.0.1:PORT', knot), recursorPort, recursor ('127.0.0.1:PORT'),
//         key: {name, algorithm, secret}, dir, txt(name) -> Promise<[values]>,
//         txtViaRecursor(name), recursorQueries(name, type) (queries unbound logged),
//         update(zone, lines, {secret}) -> Promise<{code, stdout, stderr}> (knsupdate),
//         knsupdateScript(file) (writes an exec-provider hook calling knsupdate, returns file),
//         logs(), stop()}
//   dnsToolsMissing() -> null, or what is missing (knotd, kdig, knsupdate, unbound)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, runProcess, sleep } from './harness.mjs';

const live = new Set();
const dirs = new Set();
process.on('exit', () => {
    for (const p of live) {
        try {
            process.kill(p.pid, 'SIGKILL');
        } catch {}
    }
    for (const d of dirs) {
        try {
            rmSync(d, { recursive: true, force: true });
        } catch {}
    }
});

const SBIN = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];
function which(cmd) {
    for (const d of [...(process.env.PATH || '').split(':'), ...SBIN]) {
        if (d && existsSync(path.join(d, cmd))) return path.join(d, cmd);
    }
    return null;
}

export function dnsToolsMissing() {
    const missing = ['knotd', 'kdig', 'knsupdate', 'unbound'].filter((c) => !which(c));
    return missing.length ? `${missing.join(', ')} not installed (Debian knot, knot-dnsutils, unbound: tools/deps.sh test)` : null;
}

function spawnLogged(file, args, sink, tag) {
    const p = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(p);
    p.on('exit', () => live.delete(p));
    const on = (d) => {
        sink.push(d.toString());
        if (process.env.OTT_EDGE_TEST_VERBOSE === '1') process.stderr.write(`[${tag}] ${d}`);
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    return p;
}

async function killWait(p) {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    try {
        process.kill(p.pid, 'SIGTERM');
    } catch {}
    await Promise.race([done, sleep(3000)]);
    if (p.exitCode === null && p.signalCode === null) {
        try {
            process.kill(p.pid, 'SIGKILL');
        } catch {}
    }
}

async function kdig(args) {
    return runProcess(which('kdig'), ['+time=2', '+retry=1', ...args], { timeoutMs: 10000 });
}

export async function startDns({ zones = ['ott.test'], records = {}, recursor = true } = {}) {
    const why = dnsToolsMissing();
    if (why) throw new Error(why);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ott-edge-dns-'));
    dirs.add(dir);
    const port = await freePort();
    const key = { name: 'ott-edge-test-key', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
    const conf = [
        'server:',
        `    rundir: "${dir}"`,
        `    listen: 127.0.0.1@${port}`,
        '    udp-workers: 1',
        '    tcp-workers: 1',
        '    background-workers: 1',
        'database:',
        `    storage: "${dir}"`,
        'control:',
        `    listen: "${dir}/knot.sock"`,
        'log:',
        '  - target: stderr',
        '    any: info',
        'key:',
        `  - id: ${key.name}.`,
        `    algorithm: ${key.algorithm}`,
        `    secret: ${key.secret}`,
        'acl:',
        '  - id: update',
        `    key: ${key.name}.`,
        '    action: update',
        'template:',
        '  - id: default',
        `    storage: "${dir}"`,
        '    zonefile-sync: -1',
        '    zonefile-load: whole',
        '    journal-content: none',
        '    semantic-checks: off',
        'zone:',
        ...zones.flatMap((z) => [`  - domain: ${z}`, '    acl: update']),
        '',
    ].join('\n');
    writeFileSync(path.join(dir, 'knot.conf'), conf);
    for (const z of zones) {
        writeFileSync(path.join(dir, `${z}.zone`), [
            `$ORIGIN ${z}.`,
            '$TTL 60',
            `@ SOA ns1.${z}. hostmaster.${z}. 1 3600 600 86400 1`,
            `@ NS ns1.${z}.`,
            'ns1 A 127.0.0.1',
            ...(records[z] || []),
            '',
        ].join('\n'));
    }
    const out = [];
    let knot = spawnLogged(which('knotd'), ['-c', path.join(dir, 'knot.conf')], out, 'knotd');
    let unbound = null;
    let recursorPort = 0;

    const self = {
        dir,
        port,
        server: `127.0.0.1:${port}`,
        key,
        get recursorPort() {
            return recursorPort;
        },
        get recursor() {
            return recursorPort ? `127.0.0.1:${recursorPort}` : null;
        },
        logs: () => out.join(''),
        /** how many queries for name/type unbound (the CA's resolver) received */
        recursorQueries: (name, type = 'TXT') => out.join('').split('\n')
            .filter((l) => l.includes(` ${name.replace(/\.?$/, '.')} ${type} IN`)).length,
        /** TXT values at name, straight from knot */
        async txt(name) {
            const r = await kdig([`@127.0.0.1`, '-p', String(port), '+short', name, 'TXT']);
            if (r.code !== 0) throw new Error(`kdig ${name}: ${r.stdout}${r.stderr}`);
            return r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^"(.*)"$/, '$1')).sort();
        },
        /** TXT values at name through unbound (what the CA sees, CNAMEs followed) */
        async txtViaRecursor(name) {
            const r = await kdig([`@127.0.0.1`, '-p', String(recursorPort), '+short', name, 'TXT']);
            return r.stdout.split('\n').filter((l) => l.startsWith('"')).map((l) => l.replace(/^"(.*)"$/, '$1')).sort();
        },
        /** knsupdate lines ("update add NAME TTL TXT \"v\"") for zone */
        async update(zone, lines, { secret = key.secret } = {}) {
            const input = [`server 127.0.0.1 ${port}`, `zone ${zone}.`, ...lines, 'send', ''].join('\n');
            return runProcess(which('knsupdate'), ['-y', `${key.algorithm}:${key.name}.:${secret}`], { input, timeoutMs: 10000 });
        },
        /**
         * Writes an exec-provider hook like a user's (lego's interface): `hook present|cleanup
         * FQDN VALUE` → knsupdate add/delete against this server. Every call is appended to
         * `${file}.calls`. mode 'fail': prints an error and exits 1 (after adding the record,
         * the worst case for stale records); 'hang': adds the record then sleeps.
         */
        knsupdateScript(file, { mode = 'ok', zone = null } = {}) {
            const zoneLine = zone ? `zone ${zone}.` : '';
            writeFileSync(file, `#!/bin/sh
# DNS-01 hook for ott-edge's exec provider: $1 = present|cleanup, $2 = FQDN, $3 = value
set -eu
echo "$1 $2 $3" >> "${file}.calls"
case "$1" in present) op=add;; cleanup) op=delete;; *) echo "unknown action $1" >&2; exit 2;; esac
printf 'server 127.0.0.1 ${port}\\n${zoneLine}\\nupdate %s %s 60 TXT "%s"\\nsend\\n' "$op" "$2" "$3" |
    ${which('knsupdate')} -y ${key.algorithm}:${key.name}.:${key.secret}
echo "knsupdate $op $2: ok"
${mode === 'fail' ? 'if [ "$1" = present ]; then echo "hook: the DNS API said no (simulated)" >&2; exit 1; fi' : ''}
${mode === 'hang' ? 'if [ "$1" = present ]; then echo "hook: waiting forever (simulated)"; sleep 600; fi' : ''}
`);
            chmodSync(file, 0o755);
            return file;
        },
        async stop() {
            await killWait(unbound);
            await killWait(knot);
            unbound = knot = null;
        },
    };

    // knot answers once its zones are loaded
    const end = Date.now() + 15000;
    for (;;) {
        const r = await kdig([`@127.0.0.1`, '-p', String(port), '+short', `${zones[0]}`, 'SOA']);
        if (r.code === 0 && r.stdout.includes(`ns1.${zones[0]}.`)) break;
        if (knot.exitCode !== null || Date.now() > end) {
            await self.stop();
            throw new Error(`knotd did not start: ${out.join('')}`);
        }
        await sleep(50);
    }
    if (recursor) {
        recursorPort = await freePort();
        const ub = [
            'server:',
            `    interface: 127.0.0.1@${recursorPort}`,
            `    port: ${recursorPort}`,
            '    do-ip6: no',
            '    do-daemonize: no',
            '    username: ""',
            '    chroot: ""',
            `    directory: "${dir}"`,
            '    pidfile: ""',
            '    use-syslog: no',
            '    logfile: ""',
            '    verbosity: 1',
            '    log-queries: yes',
            '    do-not-query-localhost: no',
            '    access-control: 127.0.0.0/8 allow',
            '    module-config: "iterator"',
            '    cache-max-ttl: 0',
            '    cache-max-negative-ttl: 0',
            '    num-threads: 1',
            '    so-reuseport: no',
            '    local-zone: "." refuse',
            ...zones.map((z) => `    local-zone: "${z}." transparent`),
            ...zones.flatMap((z) => ['stub-zone:', `    name: "${z}."`, `    stub-addr: 127.0.0.1@${port}`]),
            'remote-control:',
            '    control-enable: no',
            '',
        ].join('\n');
        writeFileSync(path.join(dir, 'unbound.conf'), ub);
        unbound = spawnLogged(which('unbound'), ['-d', '-c', path.join(dir, 'unbound.conf')], out, 'unbound');
        const uend = Date.now() + 15000;
        for (;;) {
            const r = await kdig([`@127.0.0.1`, '-p', String(recursorPort), '+short', `${zones[0]}`, 'SOA']);
            if (r.code === 0 && r.stdout.includes(`ns1.${zones[0]}.`)) break;
            if (unbound.exitCode !== null || Date.now() > uend) {
                await self.stop();
                throw new Error(`unbound did not start: ${out.join('')}`);
            }
            await sleep(50);
        }
    }
    return self;
}

