// Types of build.mjs, for the tests that build the CLI.
export declare const CLI_ROOT: string;
export declare const BUNDLE: string;
export declare const BIN: string;
export declare function buildCli(opts?: { clean?: boolean }): Promise<string>;
export declare function buildIfStale(): Promise<string>;
