import { main } from './main.js';

// No top-level await: the launcher loads this entry as one bundled CommonJS script.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
