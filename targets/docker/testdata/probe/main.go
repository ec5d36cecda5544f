// Command probe dials every host:port given as an argument, with a 2 s
// timeout, and prints "ADDR OK" or "ADDR FAIL ERROR" for each. The Docker
// runtime's tests run it in a container to check the network topology.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	for _, a := range os.Args[1:] {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err != nil {
			fmt.Printf("%s FAIL %v\n", a, err)
			continue
		}
		c.Close()
		fmt.Printf("%s OK\n", a)
	}
}
