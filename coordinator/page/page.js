/* The run page: the same code draws the live page (the coordinator serves
 * it; data from /timeline and /status) and the report of a finished run
 * (`herd report`; data embedded in the file). Charts are uPlot, vendored in
 * the binary. Each chart element gets data-points (points drawn) and
 * data-marker-kinds (event markers drawn), which the browser test reads. */
'use strict';
(function () {
  var DATA = JSON.parse(document.getElementById('herd-data').textContent);
  var LIVE = DATA === null;
  /* Caps as in coord_timeline.c: the page stays bounded however long it
   * stays open. */
  var CAP = { step: 1500, ranks: 400, marks: 4000, events: 4000 };
  var RANKS_DRAWN = 64;
  var MARK = {
    member_failed: '#d62728', job_failed: '#d62728',
    generation: '#1f77b4', member_joined: '#2ca02c', member_adopted: '#2ca02c',
    host_cooldown: '#ff7f0e', checkpoint_committed: '#999999', done: '#444444'
  };
  /* Drawing order: what matters most is drawn last, on top. */
  var RANK = { checkpoint_committed: 0, done: 1, member_joined: 2, member_adopted: 2,
    generation: 3, host_cooldown: 4, member_failed: 5, job_failed: 5 };
  var PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
    '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  var S = { step: [], ranks: [], epoch: [], marks: [], events: [], lastSeq: 0,
    first: null, last: null /* the run's time span, seconds */ };
  var charts = {};
  var dirty = true;

  function $(id) { return document.getElementById(id); }
  function esc(t) {
    return String(t).replace(/[&<>"]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
    });
  }
  function num(x, digits) {
    if (x === null || x === undefined || typeof x !== 'number' || !isFinite(x))
      return '–';
    return Number(x.toPrecision(digits || 4)).toLocaleString('en-US');
  }
  function dur(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '–';
    if (s < 1) return num(s * 1e3, 3) + ' ms';
    if (s < 120) return num(s, 3) + ' s';
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    return h ? h + ' h ' + m + ' min' : m + ' min ' + Math.round(s % 60) + ' s';
  }
  function clock(ts) {
    var d = new Date(ts * 1000);
    return d.toLocaleTimeString('en-GB');
  }
  function thin(a, cap) {
    if (a.length <= cap) return a;
    return a.filter(function (x, i) { return i % 2 === 0 || i === a.length - 1; });
  }

  /* ---- the data ------------------------------------------------------- */

  function add(e) {
    if (!e || typeof e.ts !== 'number' || typeof e.event !== 'string') return;
    if (typeof e.seq === 'number') {
      if (e.seq <= S.lastSeq) return;
      S.lastSeq = e.seq;
    }
    if (S.first === null || e.ts < S.first) S.first = e.ts;
    if (S.last === null || e.ts > S.last) S.last = e.ts;
    if (e.event === 'step') S.step = thin(S.step.concat([e]), CAP.step);
    else if (e.event === 'ranks') S.ranks = thin(S.ranks.concat([e]), CAP.ranks);
    else {
      if (e.event === 'epoch_end') S.epoch.push(e);
      S.events.push(e);
      if (S.events.length > CAP.events) S.events.shift();
    }
    if (MARK[e.event]) S.marks = thin(S.marks.concat([e]), CAP.marks);
    dirty = true;
  }

  /* Per-rank columns of a `ranks` event (fields named in the event; times
   * in microseconds become *_ms). */
  function rankRows(e) {
    var f = (e.fields || 'rank,samples_per_second,step_us,compute_us,comm_us,data_us').split(',');
    return (e.ranks || []).map(function (r) {
      var o = {};
      f.forEach(function (name, i) {
        if (/_us$/.test(name)) o[name.replace(/_us$/, '_ms')] = typeof r[i] === 'number' ? r[i] / 1e3 : null;
        else o[name] = r[i];
      });
      return o;
    });
  }

  /* ---- markers on every time chart, with the reason on hover ---------- */

  var tip = $('tip');
  function markerPlugin() {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx, x0 = u.scales.x.min, x1 = u.scales.x.max;
          var top = u.bbox.top, h = u.bbox.height, kinds = {}, n = 0;
          ctx.save();
          S.marks.slice().sort(function (a, b) { return (RANK[a.event] || 0) - (RANK[b.event] || 0); }).forEach(function (m) {
            if (m.ts < x0 || m.ts > x1) return;
            var x = Math.round(u.valToPos(m.ts, 'x', true)) + 0.5;
            var ckpt = m.event === 'checkpoint_committed';
            ctx.strokeStyle = MARK[m.event];
            ctx.lineWidth = (ckpt ? 1 : 2) * devicePixelRatio;
            ctx.beginPath();
            ctx.moveTo(x, ckpt ? top + h - 8 * devicePixelRatio : top);
            ctx.lineTo(x, top + h);
            ctx.stroke();
            kinds[m.event] = 1; n++;
          });
          ctx.restore();
          u.root.parentNode.setAttribute('data-markers', n);
          u.root.parentNode.setAttribute('data-marker-kinds', Object.keys(kinds).sort().join(' '));
        }],
        setCursor: [function (u) {
          var left = u.cursor.left;
          if (left === null || left === undefined || left < 0) { tip.hidden = true; return; }
          var best = null, bestD = 6;
          S.marks.forEach(function (m) {
            if (m.event === 'checkpoint_committed' && best) return;
            var d = Math.abs(u.valToPos(m.ts, 'x') - left);
            if (d < bestD || (d <= bestD && best && best.event === 'checkpoint_committed')) { best = m; bestD = d; }
          });
          if (!best) { tip.hidden = true; return; }
          var r = u.over.getBoundingClientRect();
          tip.innerHTML = '<b>' + esc(clock(best.ts)) + ' ' + esc(best.event) + '</b><br>' + esc(best.text || describe(best));
          tip.style.left = Math.min(r.left + left + 12, innerWidth - 440) + 'px';
          tip.style.top = (r.top + 8) + 'px';
          tip.hidden = false;
        }]
      }
    };
  }

  /* Events from an older herd carry no `text`: their fields, rounded. */
  function describe(e) {
    return Object.keys(e).filter(function (k) {
      return k !== 'ts' && k !== 'event' && k !== 'seq' && k !== 'text' && typeof e[k] !== 'object';
    }).map(function (k) {
      return k + ' ' + (typeof e[k] === 'number' ? num(e[k], 4) : e[k]);
    }).join('  ');
  }

  /* ---- charts ---------------------------------------------------------- */

  function chartWidth(el) { return Math.max(320, el.clientWidth || 560); }

  /* Every time chart spans the whole run, so they line up and a chart
   * with one point (the first epoch's accuracy) is not stretched over
   * years around it. */
  function timeRange(u, lo, hi) {
    if (S.first !== null) {
      lo = lo === null ? S.first : Math.min(lo, S.first);
      hi = hi === null ? S.last : Math.max(hi, S.last);
    }
    if (lo === null || hi === null) return [0, 1];
    if (hi - lo < 10) { var mid = (lo + hi) / 2; lo = mid - 5; hi = mid + 5; }
    return [lo, hi];
  }

  function timeChart(id, ylabel, series) {
    var el = $(id);
    var opts = {
      width: chartWidth(el), height: 230,
      scales: { x: { time: true, range: timeRange } },
      series: [{ label: 'time', value: function (u, v) { return v == null ? '–' : clock(v); } }].concat(series),
      axes: [{ label: 'time' }, { label: ylabel, size: 64, labelSize: 18 }],
      plugins: [markerPlugin()],
      cursor: { drag: { x: true, y: false } }
    };
    charts[id] = new uPlot(opts, [[]].concat(series.map(function () { return []; })), el);
    return charts[id];
  }

  function line(label, color, extra) {
    var s = { label: label, stroke: color, width: 2, spanGaps: true,
      value: function (u, v) { return num(v, 4); } };
    for (var k in extra || {}) s[k] = extra[k];
    return s;
  }

  function setPoints(id, n) { $(id).setAttribute('data-points', n); }

  function count(cols) {
    var n = 0;
    for (var i = 1; i < cols.length; i++)
      cols[i].forEach(function (v) { if (v !== null && v !== undefined) n++; });
    return n;
  }

  function drawJob() {
    var t = S.step.map(function (e) { return e.ts; });
    var sps = S.step.map(function (e) { return typeof e.samples_per_second === 'number' ? e.samples_per_second : null; });
    var loss = S.step.map(function (e) { return typeof e.loss === 'number' && isFinite(e.loss) ? e.loss : null; });
    var world = S.step.map(function (e) { return typeof e.world_size === 'number' ? e.world_size : null; });
    var mfu = S.step.map(function (e) { return typeof e.mfu === 'number' ? e.mfu * 100 : null; });
    var d1 = [t, sps], d2 = [t, loss], d3 = [t, world], d5 = [t, mfu];
    charts['c-mfu'].setData(d5); setPoints('c-mfu', count(d5));
    charts['c-sps'].setData(d1); setPoints('c-sps', count(d1));
    charts['c-loss'].setData(d2); setPoints('c-loss', count(d2));
    charts['c-world'].setData(d3); setPoints('c-world', count(d3));
    var et = S.epoch.map(function (e) { return e.ts; });
    var acc = S.epoch.map(function (e) { return typeof e.test_accuracy === 'number' ? e.test_accuracy * 100 : null; });
    /* uPlot stretches a single point over years whatever the range
     * function says: empty points at the run's ends pin the axis. */
    if (et.length && S.first !== null && S.first < et[0] && S.last > et[et.length - 1]) {
      et = [S.first].concat(et, [S.last]);
      acc = [null].concat(acc, [null]);
    }
    var d4 = [et, acc];
    charts['c-acc'].setData(d4); setPoints('c-acc', count(d4));
  }

  var rankSeries = []; /* ranks that have a series, in series order */
  function ensureRankSeries(ranks) {
    ranks.forEach(function (r) {
      if (rankSeries.indexOf(r) >= 0 || rankSeries.length >= RANKS_DRAWN) return;
      rankSeries.push(r);
      var c = PALETTE[r % PALETTE.length];
      charts['c-rsps'].addSeries(line('rank ' + r, c, { width: 1.5 }));
      charts['c-rstep'].addSeries(line('rank ' + r, c, { width: 1.5 }));
    });
  }

  function drawRanks() {
    var seen = {};
    S.ranks.forEach(function (e) { rankRows(e).forEach(function (r) { seen[r.rank] = 1; }); });
    ensureRankSeries(Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }));
    var t = S.ranks.map(function (e) { return e.ts; });
    var sps = [t], step = [t];
    rankSeries.forEach(function (rank) {
      var a = [], b = [];
      S.ranks.forEach(function (e) {
        var row = rankRows(e).filter(function (r) { return r.rank === rank; })[0];
        a.push(row ? row.samples_per_second : null);
        b.push(row ? row.step_ms : null);
      });
      sps.push(a); step.push(b);
    });
    if (!S.ranks.length && !LIVE)
      ['c-rsps', 'c-rstep', 'c-split'].forEach(function (id) {
        $(id).setAttribute('title', 'missing: this events.jsonl has no ranks events (an earlier herd wrote none)');
        $(id).parentNode.querySelector('h2').textContent += ' – missing in this run';
      });
    charts['c-rsps'].setData(sps); setPoints('c-rsps', count(sps));
    charts['c-rstep'].setData(step); setPoints('c-rstep', count(step));
    drawSplit(S.ranks.length ? rankRows(S.ranks[S.ranks.length - 1]) : []);
  }

  /* Grouped bars: x = 4*rank + {0,1,2} for compute, comm, data. */
  function drawSplit(rows) {
    rows = rows.slice(0, RANKS_DRAWN);
    var x = [], c = [], m = [], d = [];
    rows.forEach(function (r) {
      for (var k = 0; k < 3; k++) {
        x.push(4 * r.rank + k);
        c.push(k === 0 ? r.compute_ms : null);
        m.push(k === 1 ? r.comm_ms : null);
        d.push(k === 2 ? r.data_ms : null);
      }
    });
    var data = [x, c, m, d];
    var u = charts['c-split'];
    u.setData(data);
    setPoints('c-split', count(data));
  }

  function splitChart() {
    var el = $('c-split');
    var bars = uPlot.paths.bars({ size: [0.9, 40] });
    function bar(label, color) {
      return { label: label, fill: color, stroke: color, paths: bars, points: { show: false },
        value: function (u, v) { return v == null ? '–' : num(v, 3) + ' ms'; } };
    }
    charts['c-split'] = new uPlot({
      width: chartWidth(el), height: 230,
      scales: { x: { time: false, range: function (u, lo, hi) { return [lo - 1, hi + 1]; } } },
      series: [{ label: 'rank', value: function (u, v) { return v == null ? '–' : 'rank ' + Math.floor(v / 4); } },
        bar('compute', '#1f77b4'), bar('communication', '#ff7f0e'), bar('data', '#2ca02c')],
      axes: [{ label: 'rank', splits: function (u) {
        var s = [], lo = u.scales.x.min, hi = u.scales.x.max;
        for (var v = Math.ceil((lo - 1) / 4) * 4 + 1; v <= hi; v += 4) s.push(v);
        return s;
      }, values: function (u, splits) { return splits.map(function (v) { return String((v - 1) / 4); }); } },
      { label: 'ms per step', size: 64, labelSize: 18 }],
      legend: { live: true }
    }, [[], [], [], []], el);
  }

  function makeCharts() {
    timeChart('c-sps', 'samples/s', [line('samples/s', '#1f77b4', { fill: 'rgba(31,119,180,0.12)' })]);
    timeChart('c-loss', 'loss', [line('loss', '#d62728')]);
    timeChart('c-acc', 'accuracy (%)', [line('test accuracy %', '#2ca02c', { points: { show: true, size: 6 } })]);
    timeChart('c-mfu', 'MFU (%)', [line('model FLOP utilization %', '#8c564b')]);
    timeChart('c-world', 'workers', [line('world size', '#9467bd', { paths: uPlot.paths.stepped({ align: 1 }) })]);
    timeChart('c-rsps', 'samples/s', []);
    timeChart('c-rstep', 'ms per step', []);
    splitChart();
    addEventListener('resize', function () {
      Object.keys(charts).forEach(function (id) {
        charts[id].setSize({ width: chartWidth($(id)), height: 230 });
      });
    });
  }

  /* ---- tables ---------------------------------------------------------- */

  function drawEvents() {
    var ckpts = 0, list = S.events.filter(function (e) {
      if (e.event !== 'checkpoint_committed') return true;
      ckpts++;
      return false;
    }).slice(-300).reverse();
    $('events-note').textContent = '(newest first; ' + ckpts + ' checkpoint commits are marked on the charts, not listed)';
    var h = '<tr><th class="l">time</th><th class="l">event</th><th class="l">what</th></tr>';
    list.forEach(function (e) {
      h += '<tr class="' + esc(e.event) + '"><td class="l">' + esc(clock(e.ts)) + '</td><td class="l">' +
        esc(e.event) + '</td><td class="l">' + esc(e.text || describe(e)) + '</td></tr>';
    });
    $('events').innerHTML = h;
  }

  /* Members: /status on the live page, the last `ranks` report otherwise. */
  function drawMembers(members, nowTs) {
    var times = members.map(function (m) { return m.step_seconds; }).filter(function (x) { return typeof x === 'number'; }).sort(function (a, b) { return a - b; });
    var med = times.length ? times[Math.floor(times.length / 2)] : 0;
    var h = '<tr><th>rank</th><th class="l">host</th><th class="l">state</th><th>step</th><th>samples/s</th>' +
      '<th>step ms</th><th>compute</th><th>comm</th><th>data</th><th>last heartbeat</th></tr>';
    members.forEach(function (m) {
      var slow = med > 0 && m.step_seconds > 1.5 * med;
      h += '<tr' + (slow ? ' class="slow" title="step time above 1.5x the median"' : '') + '><td>' + esc(m.rank) + '</td><td class="l">' +
        esc(m.host || '–') + '</td><td class="l">' + esc(m.state || '–') + '</td><td>' + esc(m.step === undefined ? '–' : m.step) +
        '</td><td>' + num(m.samples_per_second, 4) + '</td><td>' + num(m.step_seconds * 1e3, 3) + '</td><td>' +
        num(m.compute_seconds * 1e3, 3) + '</td><td>' + num(m.comm_seconds * 1e3, 3) + '</td><td>' +
        num(m.data_seconds * 1e3, 3) + '</td><td>' + (typeof m.last_seen_ms_ago === 'number' ? dur(m.last_seen_ms_ago / 1e3) + ' ago' : '–') + '</td></tr>';
    });
    $('members').innerHTML = h;
  }

  function membersFromRanks() {
    if (!S.ranks.length) { $('members').innerHTML = '<tr><td class="l">no per-rank reports</td></tr>'; return; }
    var last = S.ranks[S.ranks.length - 1];
    $('members-title').textContent = 'Ranks at the last report (' + clock(last.ts) + ')';
    drawMembers(rankRows(last).map(function (r) {
      return { rank: r.rank, step: last.step, samples_per_second: r.samples_per_second,
        step_seconds: r.step_ms / 1e3, compute_seconds: r.compute_ms / 1e3,
        comm_seconds: r.comm_ms / 1e3, data_seconds: r.data_ms / 1e3 };
    }));
  }

  function kvTable(title, rows) {
    var h = '<div><h2>' + esc(title) + '</h2><table class="kv">';
    rows.forEach(function (r) { h += '<tr><td>' + esc(r[0]) + '</td><td class="l">' + esc(r[1]) + '</td></tr>'; });
    return h + '</table></div>';
  }

  function drawSummary(s) {
    var sec = $('summary');
    sec.hidden = false;
    var ok = s.outcome || 'unknown';
    var rows = [
      ['outcome', ok + (s.reason ? ' (' + s.reason + ')' : '')],
      ['started', s.started_ts ? new Date(s.started_ts * 1000).toLocaleString('en-GB') : 'missing'],
      ['duration', dur(s.duration_s)],
      ['steps', s.final_step == null ? 'missing' : num(s.final_step, 12)],
      ['epochs', s.epochs == null ? 'missing' : s.epochs],
      ['final test accuracy', s.final_test_accuracy == null ? 'missing' : num(s.final_test_accuracy * 100, 4) + ' %'],
      ['samples/s (mean of reports)', num(s.mean_samples_per_second, 4)],
      ['model FLOP utilization (mean)', s.mfu == null ? 'missing' : num(s.mfu * 100, 3) + ' %' +
        (s.peak_flops_per_second ? ' of ' + num(s.peak_flops_per_second / 1e9, 4) + ' GFLOP/s peak' : '')],
      ['generations', s.generations == null ? 'missing' : s.generations],
      ['failures', s.failures ? s.failures.length : 0],
      ['checkpoints committed', s.checkpoints == null ? 'missing' : s.checkpoints],
      ['last checkpoint', s.last_checkpoint || 'missing'],
      ['time not lost to recovery', s.effective_share == null ? 'missing' : num(s.effective_share * 100, 3) + ' % of wall time']
    ];
    var settings = Object.keys(s.settings || {}).map(function (k) { return [k, String(s.settings[k])]; });
    var h = '<div class="row">' + kvTable('Run', rows) + (settings.length ? kvTable('Settings', settings) : '') + '</div>';
    if (s.failures && s.failures.length) {
      h += '<h2>Failures</h2><table id="failures"><tr><th class="l">time</th><th>rank</th><th class="l">host</th><th class="l">detected by</th>' +
        '<th class="l">reason</th><th>recovered after</th><th>steps redone</th></tr>';
      s.failures.forEach(function (f) {
        h += '<tr class="member_failed"><td class="l">' + esc(clock(f.ts)) + '</td><td>' + esc(f.rank == null ? '?' : f.rank) +
          '</td><td class="l">' + esc(f.host || '?') + '</td><td class="l">' + esc(f.signal || 'missing') + '</td><td class="l">' +
          esc(f.reason || '') + '</td><td>' + (f.recovery_s == null ? 'not recovered' : dur(f.recovery_s)) + '</td><td>' +
          (f.steps_redone == null ? '–' : f.steps_redone) + '</td></tr>';
      });
      h += '</table>';
    }
    sec.innerHTML = h;
    $('title').textContent = 'herd report – ' + (s.job_id || 'run');
    $('state').innerHTML = '<b>' + esc(ok) + '</b> · ' + esc(s.run_dir || '');
    $('footer').textContent = 'Written by herd report from ' + (s.events_file || 'events.jsonl') + ' (' +
      (s.lines || 0) + ' lines, ' + (s.bad_lines || 0) + ' unreadable). Markers: red failure, blue generation, green join, grey checkpoint.';
  }

  function redraw() {
    if (!dirty) return;
    dirty = false;
    drawJob();
    drawRanks();
    drawEvents();
    if (!LIVE) membersFromRanks();
    Object.keys(charts).forEach(function (id) { charts[id].redraw(false); });
    /* From navigation to the first full draw (the size budget bench). */
    if (!document.body.hasAttribute('data-render-ms'))
      document.body.setAttribute('data-render-ms', Math.round(performance.now()));
  }

  /* ---- live ------------------------------------------------------------ */

  function authHeaders() {
    var t = (location.hash.match(/token=([^&]+)/) || [])[1];
    return t ? { Authorization: 'Bearer ' + decodeURIComponent(t) } : {};
  }
  function get(path) {
    return fetch(path, { cache: 'no-store', headers: authHeaders() }).then(function (r) {
      if (r.status === 401) throw new Error('this server is exposed: open it as URL#token=JOB_TOKEN');
      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
      return r.json();
    });
  }
  function showStatus(s) {
    $('title').textContent = 'herd – ' + s.job + ' / ' + s.run_id;
    $('state').innerHTML = '<b>' + esc(s.job_state) + '</b> · generation ' + esc(s.generation) +
      ' · world ' + esc(s.world_size) + ' · step ' + esc(s.step) + ' · ' + num(s.samples_per_second, 4) +
      ' samples/s · step ' + num(s.step_seconds * 1e3, 3) + ' ms · ETA ' + dur(s.eta_seconds) +
      ' · failures ' + esc(s.failures) +
      (typeof s.mfu === 'number' ? ' · MFU ' + num(s.mfu * 100, 3) + ' %' : '');
    drawMembers(s.members || []);
    document.title = 'herd – ' + s.job;
  }
  function pollStatus() {
    get('status').then(showStatus).catch(function (e) { $('state').textContent = 'no answer: ' + e.message; })
      .then(function () { setTimeout(pollStatus, 1000); });
  }
  function pollTimeline() {
    get('timeline?after=' + S.lastSeq).then(function (list) { list.forEach(add); redraw(); })
      .catch(function () {}).then(function () { setTimeout(pollTimeline, 2000); });
  }

  makeCharts();
  if (LIVE) {
    pollStatus();
    pollTimeline();
  } else {
    (DATA.timeline || []).forEach(add);
    drawSummary(DATA.summary || {});
    redraw();
  }
})();
