/**
 * Try a tool, on a server's page: pick a tool, fill the form its input
 * schema gives, Call. The console calls it through the server's own
 * endpoint (as any client does, spec.tools and all) and shows what came
 * back: the text content, structured content as JSON, and errors as errors.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { ErrorNote } from './components';
import { toolArguments, toolFields, type ToolField } from './tool-form';
import type { CallToolAnswer, ToolsAnswer } from './types';

type Tool = ToolsAnswer['tools'][number];

function FieldInput({ field, id, value, onChange }: { field: ToolField; id: string; value: string; onChange: (v: string) => void }) {
  const common = { id, name: field.name, required: field.required, 'aria-describedby': field.description ? `${id}-help` : undefined };
  const set = (e: Event) => onChange((e.target as HTMLInputElement).value);
  switch (field.kind) {
    case 'enum':
    case 'boolean': {
      const choices = field.kind === 'boolean' ? ['true', 'false'] : (field.choices ?? []).map((c) => (typeof c === 'string' ? c : JSON.stringify(c)));
      return (
        <select {...common} value={value} onChange={set}>
          {(!field.required || value === '') && <option value="">{field.required ? 'choose...' : '(leave out)'}</option>}
          {choices.map((c) => <option key={c} value={c}>{c}</option>)}
        </select>
      );
    }
    case 'number':
    case 'integer':
      return <input {...common} type="number" step={field.kind === 'integer' ? 1 : 'any'} value={value} onInput={set} />;
    case 'json':
      return <textarea {...common} rows={4} spellcheck={false} placeholder="JSON" value={value} onInput={set} />;
    default:
      return <input {...common} type="text" autoComplete="off" value={value} onInput={set} />;
  }
}

/** One block of a tool's content: text as text; anything else (an image, a resource) as its JSON, an image's data left out. */
function ContentBlock({ block }: { block: unknown }) {
  const b = block as { type?: string; text?: string; data?: string; mimeType?: string };
  if (b.type === 'text' && typeof b.text === 'string') return <pre class="code">{b.text}</pre>;
  if ((b.type === 'image' || b.type === 'audio') && typeof b.data === 'string') {
    return <p class="muted">[{b.type}, {b.mimeType ?? 'unknown type'}, {Math.floor((b.data.length * 3) / 4)} bytes]</p>;
  }
  return <pre class="code">{JSON.stringify(block, null, 2)}</pre>;
}

function CallResult({ answer }: { answer: CallToolAnswer }) {
  if (answer.error) {
    return (
      <div class="error" role="alert" data-testid="tool-error">
        <p>{answer.tool} was refused (error {answer.error.code}): {answer.error.message}</p>
      </div>
    );
  }
  const result = answer.result!;
  return (
    <div class={result.isError ? 'tool-result failed' : 'tool-result'}>
      <p class={result.isError ? 'bad-text' : 'muted'} role={result.isError ? 'alert' : 'status'}>
        {result.isError ? `${answer.tool} answered with an error` : `${answer.tool} answered`} in {answer.ms} ms
        {result.content.length === 0 ? ', with no content.' : ':'}
      </p>
      {result.content.map((block, i) => <ContentBlock key={i} block={block} />)}
      {result.structuredContent !== undefined && (
        <>
          <p class="muted">Structured content:</p>
          <pre class="code" data-testid="structured-content">{JSON.stringify(result.structuredContent, null, 2)}</pre>
        </>
      )}
    </div>
  );
}

function ToolForm({ server, tool }: { server: string; tool: Tool }) {
  const fields = toolFields(tool.inputSchema);
  const [texts, setTexts] = useState<Record<string, string>>({});
  const [answer, setAnswer] = useState<CallToolAnswer>();
  const [error, setError] = useState<{ message: string; hints?: string[] }>();
  const [busy, setBusy] = useState(false);
  const call = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setAnswer(undefined);
    const args = toolArguments(fields, texts);
    if (!args.ok) {
      setError({ message: args.message });
      return;
    }
    setBusy(true);
    try {
      setAnswer(await api.post<CallToolAnswer>(`/api/v1/mcpservers/${server}/call`, { tool: tool.name, arguments: args.arguments }));
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="stack try-form" onSubmit={(e) => void call(e)}>
      {tool.description && <p class="muted">{tool.description}</p>}
      {fields.length === 0 && <p class="muted">This tool takes no arguments.</p>}
      {fields.map((f) => {
        const id = `arg-${tool.name}-${f.name}`;
        return (
          <div class="field" key={f.name} data-argument={f.name}>
            <label for={id}>
              {f.title ?? f.name}
              {f.required && <span class="required" aria-hidden="true"> *</span>} <small>{f.kind === 'json' ? 'JSON' : f.kind}</small>
            </label>
            <FieldInput field={f} id={id} value={texts[f.name] ?? f.initial} onChange={(v) => setTexts({ ...texts, [f.name]: v })} />
            {f.description && <small id={`${id}-help`}>{f.description}</small>}
          </div>
        );
      })}
      <ErrorNote error={error} />
      <div class="buttons">
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Calling...' : 'Call'}</button>
      </div>
      <div data-testid="tool-result" aria-live="polite">{answer && <CallResult answer={answer} />}</div>
    </form>
  );
}

/** The panel: the tools as the endpoint offers them (fetched when the server is Ready), one picked, its form. */
export function TryTool({ server, ready, pick }: { server: string; ready: boolean; pick?: string }) {
  const [tools, setTools] = useState<Tool[]>();
  const [error, setError] = useState<{ message: string; hints?: string[] }>();
  const [chosen, setChosen] = useState<string>();
  useEffect(() => {
    if (!ready) return;
    setError(undefined);
    api.get<ToolsAnswer>(`/api/v1/mcpservers/${server}/tools`).then((r) => setTools(r.tools), setError);
  }, [server, ready]);
  useEffect(() => {
    if (pick !== undefined) setChosen(pick);
  }, [pick]);
  if (!ready) return <p class="muted">The server is not Ready: its tools can be tried once it is.</p>;
  if (error) return <ErrorNote error={error} />;
  if (tools === undefined) return <p class="muted">Asking the server for its tools...</p>;
  if (tools.length === 0) return <p class="muted">The server offers no tools to clients.</p>;
  const tool = tools.find((t) => t.name === chosen) ?? tools[0]!;
  return (
    <div class="try-tool" data-testid="try-tool">
      <label>
        Tool
        <select value={tool.name} onChange={(e) => setChosen((e.target as HTMLSelectElement).value)}>
          {tools.map((t) => <option key={t.name} value={t.name}>{t.title ? `${t.name} (${t.title})` : t.name}</option>)}
        </select>
      </label>
      <ToolForm key={tool.name} server={server} tool={tool} />
    </div>
  );
}
