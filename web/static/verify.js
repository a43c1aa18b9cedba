/* The "verified" badge: checks on this device, with WebCrypto, that the records shown are the ones in
   the public transparency log (docs/ledger.md):
   1. each record's chain hash, recomputed from its canonical bytes (section 2);
   2. each record's inclusion proof: leaf hash and RFC 9162 audit path up to the checkpoint root (5.1);
   3. the checkpoint's Ed25519 signature with the log's verifier key, whose key ID is recomputed (4.2). */
(function () {
  "use strict";
  var badge = document.getElementById("badge");
  var source = document.getElementById("ledger");
  if (!badge || !source) { return; }
  var label = badge.querySelector(".badge-text");
  var detail = document.getElementById("badge-detail");
  var enc = new TextEncoder();

  function show(state, message, info) {
    badge.className = "badge badge-" + state;
    badge.setAttribute("data-state", state);
    label.textContent = message;
    if (detail) { detail.textContent = info || ""; }
  }
  function Failure(message) { this.message = message; }
  function Pending(message) { this.message = message; }
  function Unsupported(message) { this.message = message; }

  var subtle = window.crypto && window.crypto.subtle;
  if (window.isSecureContext === false) {
    // WebCrypto exists only on secure origins: the fix is the address, not the browser.
    show("unsupported", badge.dataset.insecure, "this page was opened over plain http");
    return;
  }
  if (!subtle || !window.fetch) {
    show("unsupported", badge.dataset.unsupported, "WebCrypto needs a secure (https) connection");
    return;
  }
  show("checking", badge.dataset.checking);

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }
  function unhex(text) {
    if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) { throw new Failure("malformed hex"); }
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(text.substr(i * 2, 2), 16); }
    return out;
  }
  function unb64(text) {
    var bin;
    try { bin = atob(text); } catch (e) { throw new Failure("malformed base64"); }
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function concat() {
    var n = 0, i, parts = Array.prototype.slice.call(arguments);
    for (i = 0; i < parts.length; i++) { n += parts[i].length; }
    var out = new Uint8Array(n), at = 0;
    for (i = 0; i < parts.length; i++) { out.set(parts[i], at); at += parts[i].length; }
    return out;
  }
  function same(a, b) {
    if (a.length !== b.length) { return false; }
    var d = 0;
    for (var i = 0; i < a.length; i++) { d |= a[i] ^ b[i]; }
    return d === 0;
  }
  async function sha256() {
    return new Uint8Array(await subtle.digest("SHA-256", concat.apply(null, arguments)));
  }
  var ZERO = new Uint8Array([0]), ONE = new Uint8Array([1]), NL = new Uint8Array([10]);

  async function verifierKey(url) {
    var resp = await fetch(url, { cache: "no-cache" });
    if (!resp.ok) { throw new Failure("the log key is not available"); }
    return keyOf((await resp.text()).trim());
  }
  async function keyOf(line) {
    var a = line.indexOf("+"), b = line.indexOf("+", a + 1);
    if (a <= 0 || b <= a) { throw new Failure("malformed verifier key"); }
    var name = line.slice(0, a), id = line.slice(a + 1, b), raw = unb64(line.slice(b + 1));
    if (raw.length !== 33 || raw[0] !== 0x01) { throw new Failure("not an Ed25519 log key"); }
    if (hex((await sha256(enc.encode(name), NL, raw)).slice(0, 4)) !== id) {
      throw new Failure("the key ID does not match the key");
    }
    var key;
    try {
      key = await subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      throw new Unsupported("this browser has no Ed25519");
    }
    return { name: name, id: id, key: key };
  }

  var notes = {};
  function checkpoint(note, vkey) {
    if (!notes[note]) { notes[note] = verifyNote(note, vkey); }
    return notes[note];
  }
  async function verifyNote(note, vkey) {
    var split = note.lastIndexOf("\n\n");
    if (split < 0 || note.charAt(note.length - 1) !== "\n") { throw new Failure("malformed checkpoint"); }
    var body = note.slice(0, split + 1);
    var lines = note.slice(split + 2, -1).split("\n");
    var signed = false;
    for (var i = 0; i < lines.length; i++) {
      var parts = lines[i].split(" ");
      if (parts.length !== 3 || parts[0] !== "\u2014") { throw new Failure("malformed signature line"); }
      var raw = unb64(parts[2]);
      if (parts[1] !== vkey.name || raw.length < 4 || hex(raw.slice(0, 4)) !== vkey.id) { continue; }
      if (raw.length !== 68 ||
          !(await subtle.verify({ name: "Ed25519" }, vkey.key, raw.slice(4), enc.encode(body)))) {
        throw new Failure("the checkpoint signature does not verify");
      }
      signed = true;
    }
    if (!signed) { throw new Failure("the checkpoint is not signed by the log key"); }
    var fields = body.split("\n");
    if (fields.length < 4 || !/^(0|[1-9][0-9]*)$/.test(fields[1])) { throw new Failure("malformed checkpoint"); }
    var root = unb64(fields[2]);
    if (root.length !== 32) { throw new Failure("malformed checkpoint root"); }
    return { origin: fields[0], size: Number(fields[1]), root: root,
             logId: hex(await sha256(enc.encode(fields[0]))) };
  }

  function later() { return new Promise(function (done) { setTimeout(done, 1000); }); }

  // A compact bundle page is one multiproof of its records' leaves against one checkpoint: "nodes" holds the
  // hashes of the tree's largest subtrees without any of those leaves, left to right (docs/ledger.md).
  function readBundle(page, pages) {
    if (!page || !Array.isArray(page.proofs) || !Array.isArray(page.pending) || !Array.isArray(page.nodes) ||
        !page.nodes.every(function (h) { return typeof h === "string" && h.length === 64; })) {
      throw new Failure("malformed proof bundle");
    }
    if (page.proofs.length) { pages.push(page); }
  }

  // Every record's proof in one request (page by page for a very long batch), each page against one
  // checkpoint; asked again a second later while some records are still waiting to enter the log.
  async function proofsFor(url) {
    for (var attempt = 0; attempt < 20; attempt++) {
      var pages = [], waiting = false, next = url;
      while (next) {
        var resp = await fetch(next, { cache: "no-cache" });
        if (!resp.ok) { throw new Failure("no inclusion proofs (HTTP " + resp.status + ")"); }
        var page = await resp.json();
        readBundle(page, pages);
        waiting = waiting || page.pending.length > 0;
        next = typeof page.next === "string" && page.next.charAt(0) === "/" ? page.next : null;
      }
      if (!waiting) { return pages; }
      await later();
    }
    throw new Pending("not in the log yet");
  }

  // The root of a tree of "size" leaves from some of its leaves ({index, hash}, by index) and the hashes
  // of its largest subtrees without any of them, left to right (RFC 9162's MTH, section 2.1.1).
  async function multiRoot(leaves, size, nodes) {
    var at = 0, used = 0;
    async function mth(start, end) {
      if (at === leaves.length || leaves[at].index >= end) {
        if (used === nodes.length) { throw new Failure("the proof is missing hashes"); }
        return unhex(nodes[used++]);
      }
      if (end - start === 1) { return leaves[at++].hash; }
      var k = 1;
      while (k * 2 < end - start) { k *= 2; }
      var left = await mth(start, start + k);
      return sha256(ONE, left, await mth(start + k, end));
    }
    var root = await mth(0, size);
    if (used !== nodes.length) { throw new Failure("the proof has hashes to spare"); }
    return root;
  }

  // One page's multiproof of the chained records it names: its checkpoint and the seqs it proved. A record
  // of a batch this one came from is named by its event id instead (``also``: the last record shown of each).
  async function checkPage(page, chained, vkey, also) {
    var cp = await checkpoint(page.checkpoint, vkey);
    if (cp.logId !== page.log_id) { throw new Failure("the proof is for another log"); }
    if (page.tree_size !== cp.size) { throw new Failure("the proof does not fit the checkpoint"); }
    var leaves = [], named = [];
    for (var i = 0; i < page.proofs.length; i++) {
      var p = page.proofs[i], ev;
      if (!Number.isInteger(p.leaf_index) || p.leaf_index < 0 || p.leaf_index >= cp.size) {
        throw new Failure("the proof does not fit the checkpoint");
      }
      if (typeof p.event_id === "string") {
        ev = also && Object.prototype.hasOwnProperty.call(also, p.event_id) ? also[p.event_id] : null;
        if (!ev) { throw new Failure("the proof names a record this page does not show"); }
        named.push(p.event_id);
        leaves.push({ index: p.leaf_index, hash: await sha256(ZERO, ev.hash), seq: null });
        continue;
      }
      ev = Number.isInteger(p.seq) ? chained[p.seq - 1] : null;
      // A record logged after this page was made: the page is older than the log.
      if (!ev) { throw new Pending("the batch has records newer than this page"); }
      leaves.push({ index: p.leaf_index, hash: await sha256(ZERO, ev.hash), seq: p.seq });
    }
    leaves.sort(function (a, b) { return a.index - b.index; });
    for (i = 1; i < leaves.length; i++) {
      if (leaves[i].index === leaves[i - 1].index) { throw new Failure("malformed proof bundle"); }
    }
    if (!same(await multiRoot(leaves, cp.size, page.nodes), cp.root)) {
      throw new Failure("the log holds a different record: the audit paths do not lead to the signed root");
    }
    return { cp: cp, seqs: leaves.filter(function (l) { return l.seq !== null; }).map(function (l) { return l.seq; }),
             named: named };
  }

  // 1. The hash chain, from the canonical bytes shown on this page (as UTF-8 text, or base64), each
  // record linked to the one before it from ``prev`` (the batch's genesis value, or for a batch received from
  // another ledger the shipment's hash there). ``joins``: the record whose hash must be the shipment's.
  async function chainOf(events, prev, joins) {
    var chained = [];
    for (var i = 0; i < events.length; i++) {
      var ev = events[i];
      if (ev.seq !== i + 1) { throw new Failure("record " + (i + 1) + ": the chain is broken"); }
      var bytes = typeof ev.text === "string" ? enc.encode(ev.text) : unb64(ev.canonical);
      var h = await sha256(enc.encode("trace/chain/v1"), ZERO, prev, bytes);
      // The stored hash's prefix: a record edited in place no longer fits it (the proof checks all of h).
      if (hex(h.slice(0, 4)) !== ev.check) { throw new Failure("record " + ev.seq + ": its content was changed"); }
      if (joins && ev.seq === joins.seq && hex(h) !== joins.hash) {
        throw new Failure("record " + ev.seq + " is not the shipment this city received");
      }
      chained.push({ seq: ev.seq, hash: h });
      prev = h;
    }
    if (joins && chained.length < joins.seq) { throw new Failure("the records stop before the shipment"); }
    return chained;
  }
  function genesis(code) { return sha256(enc.encode("trace/genesis/v1"), ZERO, enc.encode(code)); }

  // 2 and 3. Every record with a proof is in the signed log, each proved once; ``all``: every record has one
  // (else the last must, and proves the ones chained before it). ``also``: the last records of the batches
  // this one came from, by event id, each of which must be proved too.
  async function included(chained, pages, vkey, all, also) {
    var checked = await Promise.all(pages.map(function (page) { return checkPage(page, chained, vkey, also); }));
    var proved = {}, provedAlso = {}, size = 0, last = chained.length ? chained[chained.length - 1].seq : 0;
    checked.forEach(function (c) {
      size = Math.max(size, c.cp.size);
      c.seqs.forEach(function (seq) {
        if (proved[seq]) { throw new Failure("record " + seq + ": proved twice"); }
        proved[seq] = true;
      });
      c.named.forEach(function (id) {
        if (provedAlso[id]) { throw new Failure("record " + id + ": proved twice"); }
        provedAlso[id] = true;
      });
    });
    chained.forEach(function (ev) {
      if (!proved[ev.seq] && (all || ev.seq === last)) { throw new Failure("record " + ev.seq + ": no inclusion proof"); }
    });
    Object.keys(also || {}).forEach(function (id) {
      if (!provedAlso[id]) { throw new Failure(also[id].code + ": no inclusion proof"); }
    });
    return size;
  }
  // The batches this one came from, as far as the journey shows them: each one's chain from its start up to its
  // last record shown, whose proof (by event id) comes in the batch's own bundle and proves the rest.
  async function upstreamOf(ledger) {
    var also = {}, n = 0, ups = ledger.upstream || [];
    for (var i = 0; i < ups.length; i++) {
      var up = ups[i];
      var start = up.chain_start ? unhex(up.chain_start) : await genesis(up.trace_code);
      var chained = await chainOf(up.events, start, null);
      if (!chained.length || typeof up.last !== "string") { throw new Failure(up.trace_code + ": no records"); }
      also[up.last] = { hash: chained[chained.length - 1].hash, code: up.trace_code };
      n += chained.length;
    }
    return { also: also, n: n };
  }

  async function run(ledger) {
    var start = ledger.chain_start ? unhex(ledger.chain_start) : await genesis(ledger.trace_code);
    var chained = await chainOf(ledger.events, start, null);
    var upstream = await upstreamOf(ledger);
    var vkey = await verifierKey(ledger.public_key_url);
    var size = await included(chained, await proofsFor(ledger.proofs_url), vkey, true, upstream.also);
    return { n: ledger.events.length + upstream.n, info: vkey.name + " · key " + vkey.id + " · log size " + size };
  }

  // A part recorded at another member ledger: its records and proofs came with the page, and are checked
  // against that ledger's checkpoints with the key the federation file pins for it.
  async function runPart(part) {
    // A ledger that received the batch from another itself: its records continue from that shipment's hash.
    var start = part.chain_start ? unhex(part.chain_start) : await genesis(part.trace_code);
    var chained = await chainOf(part.events, start, part.joins);
    var vkey = await keyOf(part.key);
    if (vkey.name !== part.origin) { throw new Failure("the pinned key is not " + part.origin + "'s"); }
    var pages = [];
    part.proofs.forEach(function (page) { readBundle(page, pages); });
    var size = await included(chained, pages, vkey, false);
    return { n: part.events.length, info: vkey.name + " · key " + vkey.id + " · log size " + size };
  }

  function partBadge(i) { return document.querySelector('.part-badge[data-part="' + i + '"]'); }
  function showPart(i, state, message, info) {
    var el = partBadge(i);
    if (!el) { return; }
    el.className = "part-badge badge badge-" + state;
    el.setAttribute("data-state", state);
    el.textContent = message;
    el.title = info || "";
  }

  function failure(err) { return (err && err.message) || String(err); }
  // "{n} records match": the words for one record where the language has them ("1 record matches").
  function counted(el, n) {
    return n === 1 && el.dataset.okOne ? el.dataset.okOne : el.dataset.ok.replace("{n}", n);
  }

  var ledger = JSON.parse(source.textContent);
  var parts = (ledger.elsewhere || []).map(function (part, i) {
    return runPart(part).then(function (ok) {
      var el = partBadge(i);
      showPart(i, badge.dataset.caution ? "records" : "ok", el ? counted(el, ok.n) : "", ok.info);
      return ok;
    }, function (err) {
      var state = err instanceof Unsupported ? "unsupported" : "fail";
      showPart(i, state, badge.dataset[state], part.origin + ": " + failure(err));
      err.message = part.origin + ": " + failure(err);
      throw err;
    });
  });
  Promise.all([run(ledger)].concat(parts)).then(function (oks) {
    var n = oks.reduce(function (m, ok) { return m + ok.n; }, 0);
    var info = oks.map(function (ok) { return ok.info; }).join(" | ");
    // Under a recall or a hold the records are genuine, the product is not safe: never a green tick there.
    show(badge.dataset.caution ? "records" : "ok", counted(badge, n), info);
  }, function (err) {
    if (err instanceof Unsupported) { show("unsupported", badge.dataset.unsupported, err.message); }
    else if (err instanceof Pending) { show("pending", badge.dataset.pending, err.message); }
    else { show("fail", badge.dataset.fail, failure(err)); }
  });
}());
