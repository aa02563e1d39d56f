// Command statuscheck reads Kubernetes objects (JSON) on stdin and prints, for each, how the two common GitOps tools
// would judge it:
//
//   - kstatus: the status computed by sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, the library Flux
//     (Kustomization `wait`/healthChecks, helm-controller) and kpt/cli-utils appliers use;
//   - health: the result of an Argo CD resource health check written in Lua (-health FILE), run with
//     github.com/yuin/gopher-lua the way Argo CD's util/lua VM runs a health script from argocd-cm: a fresh LState
//     with only the package, base and table libraries and a reduced `os` (time, date) unless -open-libs is given
//     (argocd-cm `resource.customizations.useOpenLibs.<group_kind>: "true"`), a one-second deadline, the object as
//     the global `obj`, and the returned table read as {status, message} where status must be one of Healthy,
//     Progressing, Degraded, Suspended, Missing or Unknown (anything else becomes Unknown with Argo CD's message).
//
// Input: JSON values one after another (one per line, or pretty-printed), a JSON array, or a List object (`kubectl
// get … -o json`). Output: one JSON object per input object, one per line:
//
//	{"kind":"AnchorePolicyBinding","namespace":"ns","name":"b","kstatus":{"status":"Current","message":"…"},
//	 "health":{"status":"Healthy","message":"…"}}
//
// A script error is reported as "healthError" (Argo CD shows such a resource as Unknown with the error). Exit codes:
// 0 all objects processed, 1 unreadable input or script file, 2 bad flags.
//
// This is test tooling (built by test/cluster/build-binaries.sh, cached outside the repository); it is not shipped.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type statusOut struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type result struct {
	APIVersion  string     `json:"apiVersion"`
	Kind        string     `json:"kind"`
	Namespace   string     `json:"namespace,omitempty"`
	Name        string     `json:"name"`
	Kstatus     *statusOut `json:"kstatus,omitempty"`
	KstatusErr  string     `json:"kstatusError,omitempty"`
	Health      *statusOut `json:"health,omitempty"`
	HealthError string     `json:"healthError,omitempty"`
}

func main() {
	healthFile := flag.String("health", "", "Argo CD health check Lua script to run against each object (optional)")
	openLibs := flag.Bool("open-libs", false, "open every Lua standard library (argocd-cm resource.customizations.useOpenLibs)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: statuscheck [-health health.lua] [-open-libs] < objects.json\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	script := ""
	if *healthFile != "" {
		b, err := os.ReadFile(*healthFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "statuscheck: %v\n", err)
			os.Exit(1)
		}
		script = string(b)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	// Objects are judged as they arrive, so a `kubectl get -w -o json` stream gets one line per version at once.
	err := readObjects(os.Stdin, func(u *unstructured.Unstructured) error {
		r := result{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
		if res, err := status.Compute(u); err != nil {
			r.KstatusErr = err.Error()
		} else {
			r.Kstatus = &statusOut{Status: res.Status.String(), Message: res.Message}
		}
		if script != "" {
			if hs, err := executeHealthLua(u, script, *openLibs); err != nil {
				r.HealthError = err.Error()
			} else {
				r.Health = hs
			}
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
		return out.Flush()
	})
	if err != nil {
		out.Flush()
		fmt.Fprintf(os.Stderr, "statuscheck: reading stdin: %v\n", err)
		os.Exit(1)
	}
}

// readObjects calls fn for every object in a stream of JSON values; arrays and *List objects are flattened into
// their items.
func readObjects(r io.Reader, fn func(*unstructured.Unstructured) error) error {
	var add func(raw json.RawMessage) error
	add = func(raw json.RawMessage) error {
		if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return err
			}
			for _, it := range items {
				if err := add(it); err != nil {
					return err
				}
			}
			return nil
		}
		var list struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return err
		}
		if strings.HasSuffix(list.Kind, "List") && list.Items != nil {
			for _, it := range list.Items {
				if err := add(it); err != nil {
					return err
				}
			}
			return nil
		}
		u := &unstructured.Unstructured{}
		// UnmarshalJSON keeps integers as int64, as the objects Argo CD and Flux hold do.
		if err := u.UnmarshalJSON(raw); err != nil {
			return err
		}
		return fn(u)
	}
	dec := json.NewDecoder(r)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := add(raw); err != nil {
			return err
		}
	}
}

var validHealth = map[string]bool{"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true}

// executeHealthLua mirrors Argo CD's VM.ExecuteHealthLua (util/lua/lua.go).
func executeHealthLua(u *unstructured.Unstructured, script string, openLibs bool) (*statusOut, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.fn), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	if !openLibs {
		// Argo CD's reduced os library: time and date only (no exit, execute, getenv, files).
		safeOs := l.SetFuncs(l.NewTable(), map[string]lua.LGFunction{"time": osTime, "date": osDate})
		l.SetGlobal(lua.OsLibName, safeOs)
		l.PreloadModule(lua.OsLibName, func(L *lua.LState) int {
			L.Push(L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"time": osTime, "date": osDate}))
			return 1
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, u.Object))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	tbl, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
	// Argo CD encodes the returned table to JSON and unmarshals it into {status, message}.
	encoded, err := json.Marshal(fromLua(tbl, 0))
	if err != nil {
		return nil, err
	}
	var hs statusOut
	if err := json.Unmarshal(encoded, &hs); err != nil {
		return nil, err
	}
	if !validHealth[hs.Status] {
		return &statusOut{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return &hs, nil
}

// toLua converts an unstructured value the way Argo CD's decodeValue does: maps and slices become tables, numbers
// LNumber, json.Number a string, anything unknown nil.
func toLua(l *lua.LState, v interface{}) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case json.Number:
		return lua.LString(x)
	case []interface{}:
		t := l.CreateTable(len(x), 0)
		for _, it := range x {
			t.Append(toLua(l, it))
		}
		return t
	case map[string]interface{}:
		t := l.CreateTable(0, len(x))
		for k, it := range x {
			t.RawSetH(lua.LString(k), toLua(l, it))
		}
		return t
	}
	return lua.LNil
}

// fromLua converts a Lua value to JSON-able Go values like layeh.com/gopher-json (which Argo CD uses): a table with
// only 1..n integer keys is an array (an empty table too), any other table an object with string keys.
func fromLua(v lua.LValue, depth int) interface{} {
	if depth > 64 {
		return nil
	}
	switch x := v.(type) {
	case lua.LBool:
		return bool(x)
	case lua.LNumber:
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil
		}
		return f
	case lua.LString:
		return string(x)
	case *lua.LTable:
		n := x.MaxN()
		keys := 0
		x.ForEach(func(lua.LValue, lua.LValue) { keys++ })
		if keys == n {
			arr := make([]interface{}, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, fromLua(x.RawGetInt(i), depth+1))
			}
			return arr
		}
		obj := map[string]interface{}{}
		x.ForEach(func(k, val lua.LValue) {
			if ks, ok := k.(lua.LString); ok {
				obj[string(ks)] = fromLua(val, depth+1)
			}
		})
		return obj
	}
	return nil
}

func osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	t := l.CheckTable(1)
	field := func(name string, def int) int {
		if n, ok := t.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	d := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1), field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(d.Unix()))
	return 1
}

// osDate supports what health checks use: "!%Y-%m-%dT%H:%M:%SZ"-style formats and "*t".
func osDate(l *lua.LState) int {
	t := time.Now()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
	}
	if strings.HasPrefix(format, "!") {
		t = t.UTC()
		format = format[1:]
	}
	if l.GetTop() >= 2 {
		t = time.Unix(l.CheckInt64(2), 0)
	}
	if strings.HasPrefix(format, "*t") {
		r := l.NewTable()
		for k, v := range map[string]int{"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(), "min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1} {
			r.RawSetString(k, lua.LNumber(v))
		}
		l.Push(r)
		return 1
	}
	repl := map[byte]string{'Y': "2006", 'm': "01", 'd': "02", 'H': "15", 'M': "04", 'S': "05", 'y': "06", 'b': "Jan", 'B': "January", 'a': "Mon", 'A': "Monday", 'p': "PM", 'Z': "MST", 'z': "-0700", 'F': "2006-01-02", 'X': "15:04:05", 'c': "02 Jan 06 15:04 MST"}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] == '%' && i+1 < len(format) {
			if layout, ok := repl[format[i+1]]; ok {
				b.WriteString(t.Format(layout))
				i++
				continue
			}
		}
		b.WriteByte(format[i])
	}
	l.Push(lua.LString(b.String()))
	return 1
}
