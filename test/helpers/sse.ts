/**
 * Server-Sent Events as tests read them: chunks in, each complete event (its id and parsed data) out. The HTTP+SSE
 * transport's `endpoint` event, whose data is a path, comes out as it is, named.
 */
export function sseParser(onEvent: (event: { id?: string; event?: 'endpoint'; data: unknown }) => void): (chunk: string) => void {
  let buffer = '';
  return (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const id = /^id: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data === undefined || data === '') continue;
      if (/^event: endpoint$/m.test(block)) onEvent({ event: 'endpoint', data });
      else onEvent({ ...(id !== undefined ? { id } : {}), data: JSON.parse(data) });
    }
  };
}
