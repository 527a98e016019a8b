/** A git "remote" for tests: a bare repository in a temp folder and a clone to commit from, both made with the real git. */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tempDir } from './tmp.js';

const ENV = { ...process.env, GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 'test@example.com', GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 'test@example.com', GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent' };

export interface TestRepo {
  /** The bare repository: what apiary follows (its path is the URL). */
  url: string;
  work: string;
  git(...args: string[]): string;
  /** Writes (or, with null, removes) files, commits them and returns the sha; pushes unless told not to. */
  commit(files: Record<string, string | null>, message?: string, options?: { push?: boolean }): Promise<string>;
}

export async function testRepo(branch = 'main'): Promise<TestRepo> {
  const root = await tempDir('apiary-git-');
  const url = join(root, 'remote.git');
  const work = join(root, 'work');
  execFileSync('git', ['init', '--quiet', '--bare', '-b', branch, url], { env: ENV });
  execFileSync('git', ['init', '--quiet', '-b', branch, work], { env: ENV });
  const git = (...args: string[]): string => execFileSync('git', ['-C', work, ...args], { env: ENV, encoding: 'utf8' }).trim();
  git('remote', 'add', 'origin', url);
  let n = 0;
  return {
    url,
    work,
    git,
    async commit(files, message = `change ${++n}`, options = {}) {
      for (const [file, text] of Object.entries(files)) {
        const path = join(work, file);
        if (text === null) await rm(path, { force: true });
        else {
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, text);
        }
      }
      git('add', '-A');
      git('commit', '--quiet', '--allow-empty', '-m', message);
      if (options.push !== false) git('push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`);
      return git('rev-parse', 'HEAD');
    },
  };
}

export function gitRepositoryYaml(url: string, spec: Record<string, unknown> = {}, name = 'origin'): string {
  const lines = Object.entries({ url, ...spec }).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join('\n');
  return `apiVersion: apiary.dev/v1alpha1\nkind: GitRepository\nmetadata:\n  name: ${name}\nspec:\n${lines}\n`;
}

/** A git smart-HTTP remote that takes every request and never answers (until closed). */
export async function hangingRemote(): Promise<{ url: string; marker: string; requests: () => number; close(): Promise<void> }> {
  const { createServer } = await import('node:http');
  let requests = 0;
  const server = createServer(() => {
    requests += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const marker = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url: `http://${marker}/team/hangs.git`,
    marker,
    requests: () => requests,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
