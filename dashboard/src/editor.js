// The YAML editor: CodeMirror 6 with YAML highlighting and a linter that sends the text to the
// daemon's validator (`POST /v1/workflows/validate`) as you type, placing each error at its
// line and column. `onResult` gets every validation answer (the builder draws its graph).
import { useEffect, useRef } from 'preact/hooks';
import { EditorView, basicSetup } from 'codemirror';
import { yaml } from '@codemirror/lang-yaml';
import { linter, lintGutter } from '@codemirror/lint';
import { api } from './api.js';
import { html } from './html.js';

/** Diagnostics for CodeMirror from the validator's errors. */
export function diagnostics(doc, errors) {
  return errors.map((e) => {
    let from = 0;
    if (e.line && e.line <= doc.lines) {
      const line = doc.line(e.line);
      from = Math.min(line.from + Math.max((e.column || 1) - 1, 0), line.to);
    }
    const to = Math.min(from + 1, doc.length);
    return {
      from,
      to: Math.max(to, from),
      severity: 'error',
      message: e.field ? `${e.field}: ${e.message}` : e.message,
    };
  });
}

/** The editor; `initial` is the starting text, `onChange(text)` and `onResult(answer)`. */
export function YamlEditor({ initial, onChange, onResult, viewRef }) {
  const host = useRef(null);
  const cbs = useRef({});
  cbs.current = { onChange, onResult };
  useEffect(() => {
    const validate = linter(
      async (view) => {
        const text = view.state.doc.toString();
        try {
          const answer = await api('/workflows/validate', { method: 'POST', body: text });
          cbs.current.onResult && cbs.current.onResult(answer, text);
          return diagnostics(view.state.doc, answer.errors || []);
        } catch (err) {
          cbs.current.onResult && cbs.current.onResult({ ok: false, errors: [{ message: err.message }] }, text);
          return [];
        }
      },
      { delay: 300 },
    );
    const view = new EditorView({
      doc: initial,
      parent: host.current,
      extensions: [
        basicSetup,
        yaml(),
        lintGutter(),
        validate,
        EditorView.contentAttributes.of({ 'aria-label': 'Workflow YAML' }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) cbs.current.onChange && cbs.current.onChange(u.state.doc.toString());
        }),
      ],
    });
    if (viewRef) viewRef.current = view;
    return () => view.destroy();
  }, []);
  return html`<div class="editor" ref=${host} data-testid="editor"></div>`;
}
