package config_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/kvstore/kvstore"
	"github.com/kvstore/kvstore/config"
	"github.com/kvstore/kvstore/transport"
)

// openNode starts a one-member cluster in memory for the examples.
func openNode() *kvstore.Node {
	tr, err := transport.NewNetwork().Join("n1")
	if err != nil {
		log.Fatal(err)
	}
	node, err := kvstore.Open("", kvstore.WithID("n1"), kvstore.WithTransport(tr),
		kvstore.WithMemoryStorage(kvstore.NewMemoryStorage()), kvstore.WithBootstrap(kvstore.Peer{ID: "n1", Address: "n1"}),
		kvstore.WithRaftTiming(50*time.Millisecond, 50*time.Millisecond, 25*time.Millisecond, 0))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := node.WaitLeader(context.Background()); err != nil {
		log.Fatal(err)
	}
	return node
}

// Feature flags for a service, checked before every write.
type Flags struct {
	Checkout bool `json:"checkout"`
	Percent  int  `json:"percent"`
}

func (f Flags) Validate() error {
	if f.Percent < 0 || f.Percent > 100 {
		return fmt.Errorf("percent %d out of [0, 100]", f.Percent)
	}
	return nil
}

func ExampleConfig() {
	node := openNode()
	defer node.Close()
	ctx := context.Background()

	flags, err := config.New[Flags](node, "shop/flags")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := flags.Put(ctx, "web", Flags{Checkout: true, Percent: 10}); err != nil {
		log.Fatal(err)
	}
	// Roll out further, unless someone else changed the flags meanwhile.
	v, meta, err := flags.Update(ctx, "web", func(f Flags) (Flags, error) {
		f.Percent += 40
		return f, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %+v (version %d)\n", meta.Name, v, meta.Version)

	_, err = flags.Put(ctx, "web", Flags{Percent: 150})
	fmt.Println(errors.Is(err, config.ErrInvalid), err)
	// Output:
	// web: {Checkout:true Percent:50} (version 2)
	// true config: invalid value for "web": percent 150 out of [0, 100]
}

func ExampleConfig_Watch() {
	node := openNode()
	defer node.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	flags, err := config.New[Flags](node, "shop/flags")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := flags.Put(ctx, "web", Flags{Percent: 10}); err != nil {
		log.Fatal(err)
	}
	w, err := flags.Watch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		flags.Put(ctx, "web", Flags{Checkout: true, Percent: 20})
		flags.Delete(ctx, "web")
	}()
	for ev := range w.Events() {
		switch ev.Type {
		case config.EventPut:
			fmt.Printf("put %s: %+v -> %+v\n", ev.Name, ev.Old, ev.New)
		case config.EventSynced:
			fmt.Println("synced")
		case config.EventDelete:
			fmt.Printf("delete %s: was %+v\n", ev.Name, ev.Old)
			cancel()
		}
	}
	fmt.Println(w.Err())
	// Output:
	// put web: {Checkout:false Percent:0} -> {Checkout:false Percent:10}
	// synced
	// put web: {Checkout:false Percent:10} -> {Checkout:true Percent:20}
	// delete web: was {Checkout:true Percent:20}
	// context canceled
}
