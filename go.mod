module github.com/trailwatch/trailwatch

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/json-iterator/go v1.1.12
	github.com/tinylib/msgp v1.6.5
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/modern-go/concurrent v0.0.0-20180228061459-e0a39a4cb421 // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	github.com/philhofer/fwd v1.2.0 // indirect
	golang.org/x/sys v0.45.0 // indirect
)
