// hiredis from Debian's libhiredis-dev: its reader parses RESP replies, its formatter encodes
// commands. No hiredis I/O function is ever called: SwiftNIO does all reading and writing.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
