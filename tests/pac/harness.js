// Evaluates a PAC file's FindProxyForURL in node, with the PAC helper
// functions browsers provide (Netscape's set, plus Microsoft's isInNetEx).
//   node harness.js INPUT.json
// INPUT: {"pac": "path of the PAC file", "dns": {"name": "address" | null},
//         "my_ip": "192.168.1.20", "urls": ["http://...", ...]}
// Prints one JSON object: {"url": "what FindProxyForURL returned", ...}.
"use strict";
const fs = require("fs");
const vm = require("vm");

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const script = fs.readFileSync(input.pac, "utf8");
const dns = input.dns || {};
const resolved = [];

const isIPv4 = (s) => /^\d+\.\d+\.\d+\.\d+$/.test(s);
const v4 = (s) => s.split(".").reduce((n, part) => n * 256 + Number(part), 0);
function v6(s) {
  s = s.replace(/^\[|\]$/g, "");
  let [head, tail] = s.includes("::") ? s.split("::") : [s, null];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === null ? h : h.concat(Array(8 - h.length - t.length).fill("0"), t);
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g || "0", 16)), 0n);
}

const helpers = {
  isPlainHostName: (host) => host.indexOf(".") < 0,
  dnsDomainIs: (host, domain) =>
    host.length >= domain.length && host.substring(host.length - domain.length) === domain,
  localHostOrDomainIs: (host, hostdom) => host === hostdom || hostdom.lastIndexOf(host + ".", 0) === 0,
  isResolvable: (host) => helpers.dnsResolve(host) !== null,
  dnsResolve: (host) => {
    resolved.push(host);
    if (isIPv4(host)) return host;
    return Object.prototype.hasOwnProperty.call(dns, host) ? dns[host] : null;
  },
  isInNet: (host, pattern, mask) => {
    const ip = isIPv4(host) ? host : helpers.dnsResolve(host);
    if (!ip || !isIPv4(ip)) return false;
    const m = v4(mask);
    return ((v4(ip) & m) >>> 0) === ((v4(pattern) & m) >>> 0);
  },
  isInNetEx: (ip, prefix) => {
    const [net, len] = prefix.split("/");
    if (net.includes(":") !== ip.includes(":")) return false;
    if (!net.includes(":")) {
      const m = len === "0" ? 0 : (~0 << (32 - Number(len))) >>> 0;
      return ((v4(ip) & m) >>> 0) === ((v4(net) & m) >>> 0);
    }
    const bits = BigInt(len);
    const mask = bits === 0n ? 0n : ((1n << 128n) - 1n) ^ ((1n << (128n - bits)) - 1n);
    return (v6(ip) & mask) === (v6(net) & mask);
  },
  shExpMatch: (str, shexp) => {
    const re = shexp.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp("^" + re + "$").test(str);
  },
  myIpAddress: () => input.my_ip || "127.0.0.1",
  dnsDomainLevels: (host) => host.split(".").length - 1,
};

const context = vm.createContext(Object.assign({}, helpers));
vm.runInContext(script, context, { filename: input.pac, timeout: 1000 });
if (typeof context.FindProxyForURL !== "function") {
  console.error("no FindProxyForURL in " + input.pac);
  process.exit(1);
}
const out = {};
for (const url of input.urls) {
  const host = new URL(url).hostname;
  out[url] = context.FindProxyForURL(url, host);
}
console.log(JSON.stringify(out, null, 1));
