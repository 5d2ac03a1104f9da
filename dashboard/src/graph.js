// A workflow's action graph, laid out by dagre (top to bottom) and drawn as SVG: actions are
// nodes (keyboard-focusable buttons), `next`/`on_success`/`on_failure`/branch/loop edges are
// arrows styled by kind. `status` maps an action id to its run status for live runs.
import dagre from '@dagrejs/dagre';
import { html } from './html.js';

const NODE_W = 168;
const NODE_H = 46;

/** Positions for `graph` ({nodes, edges} as the API gives them). */
export function layout(graph) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 28, ranksep: 44, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  graph.edges.forEach((e, i) => {
    if (g.hasNode(e.from) && g.hasNode(e.to)) {
      g.setEdge(e.from, e.to, { label: e.kind, width: 40, height: 14 }, `e${i}`);
    }
  });
  dagre.layout(g);
  const nodes = graph.nodes.map((n) => ({ ...n, ...g.node(n.id) }));
  const edges = [];
  graph.edges.forEach((e, i) => {
    const laid = g.edge({ v: e.from, w: e.to, name: `e${i}` });
    if (laid) edges.push({ ...e, points: laid.points, x: laid.x, y: laid.y });
  });
  const { width, height } = g.graph();
  return { nodes, edges, width: width || NODE_W, height: height || NODE_H };
}

function path(points) {
  return points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
}

/** The graph; `onSelect(id)` when an action is chosen (click, Enter or Space). */
export function Graph({ graph, status = {}, selected, onSelect, label }) {
  if (!graph || !graph.nodes || graph.nodes.length === 0) {
    return html`<p class="muted">No actions.</p>`;
  }
  const l = layout(graph);
  const key = (id) => (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onSelect && onSelect(id);
    }
  };
  return html`
    <figure class="graph" aria-label=${label || 'Action graph'}>
      <svg viewBox=${`0 0 ${l.width} ${l.height}`} width=${l.width} height=${l.height}
           role="group" aria-label=${label || 'Action graph'} data-testid="graph">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        ${l.edges.map((e) => html`
          <g class=${`edge edge-${e.kind}`} data-edge=${`${e.from}->${e.to}`} data-kind=${e.kind}>
            <path d=${path(e.points)} marker-end="url(#arrow)" />
            ${e.kind !== 'next' && html`<text x=${e.x} y=${e.y} text-anchor="middle" class="edge-label">${e.kind.replace('on_', '')}</text>`}
          </g>`)}
        ${l.nodes.map((n) => {
          const st = status[n.id] || 'idle';
          return html`
            <g class=${`node status-${st} ${selected === n.id ? 'selected' : ''} ${n.parent ? 'in-loop' : ''}`}
               transform=${`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`}
               tabindex="0" role="button" data-action=${n.id} data-status=${st}
               aria-label=${`action ${n.id}, ${n.kind}${n.parent ? `, in loop ${n.parent}` : ''}, ${st}`}
               aria-pressed=${selected === n.id ? 'true' : 'false'}
               onClick=${() => onSelect && onSelect(n.id)} onKeyDown=${key(n.id)}>
              <rect width=${NODE_W} height=${NODE_H} rx="8" />
              <text x="10" y="19" class="node-id">${n.id}</text>
              <text x="10" y="36" class="node-kind">${n.kind}${st !== 'idle' ? ` · ${st}` : ''}</text>
            </g>`;
        })}
      </svg>
      <figcaption class="legend">
        <span class="lg lg-next">next</span> <span class="lg lg-on_success">on_success</span>
        <span class="lg lg-on_failure">on_failure</span> <span class="lg lg-true">true/false</span>
        <span class="lg lg-body">loop body</span>
      </figcaption>
    </figure>`;
}
