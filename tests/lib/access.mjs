// access — helpers the access-control tests share (tests/integration/access-*.test.mjs).
//
//   req(port, path, {localAddress, headers, method, servername, timeoutMs})
//       one HTTPS/1.1 request on a fresh connection from localAddress (any 127.0.0.0/8
//       address is a distinct client on loopback) -> {status, headers, body}
//   adminReq(port, path, {localAddress, headers}) -> {status, headers, body}   (plain HTTP)
//   hashFor(kind, password) -> a real hash line part from Debian's tools: 'htpasswd-bcrypt'
//       ($2y$, Apache's htpasswd -B), 'bcrypt' ($2b$, mkpasswd), 'sha512crypt', 'yescrypt',
//       'apr1' (htpasswd -m, which ott-edge refuses)
//   basic(user, password) -> the Authorization value
//   metric(text, name, labels) -> number | undefined   (labels: {site: 'x', limit: 'rate'})
//   rssKiB(pid) -> VmRSS of a process in KiB
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { slow } from './harness.mjs';

export function req(port, path, { localAddress, headers = {}, method = 'GET', servername = 'localhost', timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const r = https.request(
            { host: '127.0.0.1', port, path, method, headers, localAddress, servername, rejectUnauthorized: false, agent: false },
            (res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (d) => (body += d));
                res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
            },
        );
        r.setTimeout(timeoutMs * slow, () => r.destroy(new Error(`timeout: ${method} ${path}`)));
        r.on('error', reject);
        r.end();
    });
}

export function adminReq(port, path, { localAddress, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port, path, headers, localAddress, agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        });
        r.setTimeout(5000 * slow, () => r.destroy(new Error(`timeout: ${path}`)));
        r.on('error', reject);
        r.end();
    });
}

export function hashFor(kind, password) {
    switch (kind) {
        case 'htpasswd-bcrypt':
            return execFileSync('/usr/bin/htpasswd', ['-nbB', '-C', '5', 'x', password], { encoding: 'utf8' }).trim().slice(2);
        case 'apr1':
            return execFileSync('/usr/bin/htpasswd', ['-nbm', 'x', password], { encoding: 'utf8' }).trim().slice(2);
        case 'bcrypt':
        case 'sha512crypt':
        case 'yescrypt':
            return execFileSync('/usr/bin/mkpasswd', ['-m', kind, '--stdin'], { input: password, encoding: 'utf8' }).trim();
        default:
            throw new Error(`unknown hash kind ${kind}`);
    }
}

export const basic = (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export function metric(text, name, labels = {}) {
    for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries([...(m[3] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
    }
    return undefined;
}

export function rssKiB(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
}
