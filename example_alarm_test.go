package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/transport"
)

// A store that reaches its quota raises a NOSPACE alarm and refuses puts;
// deleting, compacting and disarming lets them in again.
func ExampleNode_DisarmAlarm() {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		panic(err)
	}
	n, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstore.WithBootstrap(singleMember),
		kvstore.WithRaftTiming(50*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond),
		kvstore.WithQuotaBytes(4<<10))
	if err != nil {
		panic(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	value := []byte(strings.Repeat("x", 256))
	for i := 0; ; i++ {
		_, err := n.Put(ctx, []byte(fmt.Sprint("log/", i)), value)
		if errors.Is(err, kvstore.ErrDatabaseSpaceExceeded) {
			break
		}
		if err != nil {
			panic(err)
		}
	}
	alarms, err := n.Alarms(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("alarms:", alarms)

	del, err := n.Delete(ctx, []byte("log/"), kvstore.WithPrefix())
	if err != nil {
		panic(err)
	}
	if _, err := n.Compact(ctx, del.Header.Revision, kvstore.WithCompactPhysical()); err != nil {
		panic(err)
	}
	if err := n.DisarmAlarm(ctx, "n1", kvstore.AlarmNoSpace); err != nil {
		panic(err)
	}
	_, err = n.Put(ctx, []byte("log/0"), value)
	fmt.Println("put after the disarm:", err)
	// Output:
	// alarms: [{n1 NOSPACE}]
	// put after the disarm: <nil>
}
