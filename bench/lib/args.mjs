// Command-line options of the benches: each is taken out of `argv` as it is read, so what is left is
// the positional arguments.

/** The value after `name` (`--name value`), removed from argv with it; undefined when absent. */
export function takeFlag(argv, name) {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
}

/** Whether `name` is given (a switch without a value), removed from argv. */
export function takeSwitch(argv, name) {
  const i = argv.indexOf(name);
  if (i < 0) return false;
  argv.splice(i, 1);
  return true;
}
