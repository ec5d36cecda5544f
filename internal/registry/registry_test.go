package registry

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := New[int]("widget")
	r.Add("b", 2)
	r.Add("a", 1)
	if v, err := r.Get("a"); err != nil || v != 1 {
		t.Errorf("Get(a) = %v, %v", v, err)
	}
	_, err := r.Get("c")
	if err == nil || !strings.Contains(err.Error(), `"c" is not a widget`) || !strings.Contains(err.Error(), "known: a, b") {
		t.Errorf("Get(c) error %v", err)
	}
	if got := strings.Join(r.Names(), ","); got != "a,b" {
		t.Errorf("Names %s", got)
	}
	if all := r.All(); len(all) != 2 || all[0] != 1 || all[1] != 2 {
		t.Errorf("All %v", all)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("a second a did not panic")
		}
	}()
	r.Add("a", 3)
}
