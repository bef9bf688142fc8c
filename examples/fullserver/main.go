// Command fullserver assembles every mailagent component into one mail
// server, and administers its directory.
package main

import (
	"fmt"
	"os"
)

const usage = `usage: fullserver [-data DIR] [-config FILE] COMMAND [ARGS]

Serving is not available yet; the commands below administer the directory.

commands:
  domain add|del|list [DOMAIN]
  user add|del|list|passwd|disable|enable [ADDRESS]
  alias add|del|list SOURCE [DEST[,DEST...]]
  transport set|del|list DOMAIN [SPEC]
`

func main() {
	fmt.Fprint(os.Stderr, usage)
	os.Exit(2)
}
